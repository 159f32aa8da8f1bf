"""Request bodies of Anthropic's Messages API, validated, then turned into core types.

The wire shapes are those of the official `anthropic` SDK. Fields that do not change the answer
(`metadata`, `service_tier`, `cache_control`, `thinking`, `context_management`...) are accepted
and ignored; fields
that would change it and that we cannot honour (server tools, MCP servers, documents) are
refused with a clear message rather than silently ignored.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iaforall.answering.structured import json_schema_format
from iaforall.api.extension import IAForAllOptions
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import LOCAL_USER, ChatRequest, ModelId, Sampling, UserId

_REFUSED_FIELDS = {
    "mcp_servers": "MCP servers are not available: give the tools as 'tools' instead",
    "container": "containers (code execution) are not available on this server",
}


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


class _Open(BaseModel):
    """A wire object that may carry fields we need not read (`cache_control`, `citations`)."""

    model_config = ConfigDict(extra="allow")


class OtherBlock(_Open):
    type: str


class TextBlock(_Open):
    type: Literal["text"]
    text: str


class Base64Source(BaseModel):
    type: Literal["base64"]
    media_type: Annotated[str, Field(min_length=1)]
    data: Annotated[str, Field(min_length=1)]


class UrlSource(BaseModel):
    type: Literal["url"]
    url: Annotated[str, Field(min_length=1)]


class ImageBlock(_Open):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]

    def to_part(self) -> dict[str, Any]:
        """As an OpenAI image part: `iaforall.vision` reads it before generation."""
        source = self.source
        if isinstance(source, Base64Source):
            url = f"data:{source.media_type};base64,{source.data}"
        else:
            url = source.url
        return {"type": "image_url", "image_url": {"url": url}}


class ToolUseBlock(_Open):
    type: Literal["tool_use"]
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    input: dict[str, Any] = Field(default_factory=dict)

    def to_call(self) -> dict[str, Any]:
        arguments = json.dumps(self.input, ensure_ascii=False)
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": arguments},
        }


class ToolResultBlock(_Open):
    type: Literal["tool_result"]
    tool_use_id: Annotated[str, Field(min_length=1)]
    content: str | list[TextBlock | OtherBlock] = ""
    is_error: bool = False

    def to_message(self, param: str) -> dict[str, Any]:
        """An OpenAI `tool` message answering the call `tool_use_id`."""
        if isinstance(self.content, str):
            text = self.content
        else:
            for block in self.content:
                if not isinstance(block, TextBlock):
                    raise _unsupported(
                        f"A tool_result can hold text blocks only here, not '{block.type}'.",
                        f"{param}.content",
                    )
            text = "\n".join(b.text for b in self.content if isinstance(b, TextBlock))
        if self.is_error:  # the model must know the call failed, not take it as a result
            text = f"Error: {text}"
        return {"role": "tool", "tool_call_id": self.tool_use_id, "content": text}


class ThinkingBlock(_Open):
    """The model's earlier reasoning, sent back in the history: not shown to the model again
    (our models' templates drop past reasoning themselves)."""

    type: Literal["thinking", "redacted_thinking"]


Block = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | OtherBlock,
    Field(union_mode="left_to_right"),
]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[Block]

    def to_core(self, index: int) -> list[dict[str, Any]]:
        """The OpenAI messages this turn becomes: tool results first, as `tool` messages,
        then the turn itself (its tool calls in `tool_calls`)."""
        param = f"messages.{index}.content"
        if isinstance(self.content, str):
            return [{"role": self.role, "content": self.content}]
        tools: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for i, block in enumerate(self.content):
            where = f"{param}.{i}"
            if isinstance(block, TextBlock):
                parts.append({"type": "text", "text": block.text})
            elif isinstance(block, ImageBlock):
                if self.role != "user":
                    raise InvalidRequest("Only user turns may hold images.", param=where)
                parts.append(block.to_part())
            elif isinstance(block, ToolUseBlock):
                if self.role != "assistant":
                    raise InvalidRequest("tool_use blocks belong to assistant turns.", param=where)
                calls.append(block.to_call())
            elif isinstance(block, ToolResultBlock):
                if self.role != "user":
                    raise InvalidRequest("tool_result blocks belong to user turns.", param=where)
                tools.append(block.to_message(where))
            elif not isinstance(block, ThinkingBlock):
                raise _unsupported(_refusal(block.type), where)
        if not parts and not calls:
            return tools
        # a turn of calls alone has no content, as in OpenAI's shape (null, not "")
        turn: dict[str, Any] = {"role": self.role, "content": _content(parts) if parts else None}
        if calls:
            turn["tool_calls"] = calls
        return [*tools, turn]


_FORMS = {
    "text": "a text block needs its 'text'",
    "image": "an image needs a 'source' of type 'base64' (media_type, data) or 'url'",
    "tool_use": "a tool_use block needs its 'id', 'name' and 'input' object",
    "tool_result": "a tool_result block needs the 'tool_use_id' it answers",
}


def _refusal(kind: str) -> str:
    """Why a block was not understood: a known kind in a form we do not take, or a kind we do
    not take at all (documents, search results, server tool results...)."""
    if kind in _FORMS:
        return f"This '{kind}' block is not in a form taken here: {_FORMS[kind]}."
    return (
        f"Content blocks of type '{kind}' are not supported; send text, image, tool_use or "
        "tool_result blocks."
    )


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text when there are no images, as most chat templates expect."""
    if any(p["type"] != "text" for p in parts):
        return parts
    return "".join(p["text"] for p in parts)


class Tool(_Open):
    """A client tool. Anthropic's server tools (web search, code execution...) have a `type`
    naming them and no `input_schema`: they are refused."""

    type: Literal["custom"] | None = None
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    input_schema: dict[str, Any]

    def to_core(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.input_schema}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class ToolChoice(BaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    def to_core(self) -> str | dict[str, Any]:
        if self.type == "any":
            return "required"
        if self.type == "tool":
            return {"type": "function", "function": {"name": self.name}}
        return self.type


class OutputFormat(BaseModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Open):
    """`format` constrains the answer to a JSON schema; `effort` is accepted and ignored."""

    format: OutputFormat | None = None


Temperature = Annotated[float, Field(ge=0, le=1)]


class _Counted(_Open):
    """What both /v1/messages and its count_tokens take: what the model is given."""

    model: Annotated[str, Field(min_length=1)]
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[Tool | OtherBlock] | None = None
    tool_choice: ToolChoice | None = None
    iaforall: IAForAllOptions = Field(default_factory=IAForAllOptions)

    @model_validator(mode="after")
    def _check(self) -> _Counted:
        for name in (self.model_extra or {}).keys() & _REFUSED_FIELDS.keys():
            raise _unsupported(
                f"The parameter '{name}' is not supported: {_REFUSED_FIELDS[name]}.", name
            )
        if not self.messages:
            raise InvalidRequest(
                "'messages' is empty: send at least one message.", param="messages"
            )
        for i, tool in enumerate(self.tools or ()):
            if not isinstance(tool, Tool):
                raise _unsupported(
                    f"tools.{i} (type '{tool.type}') is not a client tool with a name and an "
                    "input_schema: Anthropic's server tools are not available here.",
                    f"tools.{i}",
                )
        choice = self.tool_choice
        names = {t.name for t in self.tools or () if isinstance(t, Tool)}
        if choice is not None and choice.type == "tool":
            if choice.name not in names:
                raise InvalidRequest(
                    f"'tool_choice' names the tool '{choice.name}', which is not among the "
                    "'tools' given.",
                    param="tool_choice.name",
                )
        elif choice is not None and choice.type == "any" and not names:
            raise InvalidRequest(
                "'tool_choice' is 'any' but no 'tools' are given.", param="tool_choice"
            )
        return self

    def _messages(self) -> tuple[dict[str, Any], ...]:
        messages: list[dict[str, Any]] = []
        system = self.system
        if isinstance(system, list):
            system = "\n\n".join(block.text for block in system)
        if system:
            messages.append({"role": "system", "content": system})
        for i, message in enumerate(self.messages):
            messages += message.to_core(i)
        return tuple(messages)

    def _tools(self) -> tuple[dict[str, Any], ...]:
        if self.tool_choice is not None and self.tool_choice.type == "none":
            return ()  # as Anthropic: the model is not shown the tools it may not call
        return tuple(t.to_core() for t in self.tools or () if isinstance(t, Tool))

    def chat(
        self,
        user: UserId,
        sampling: Sampling,
        *,
        stream: bool = False,
        response_format: dict[str, Any] | None = None,
    ) -> ChatRequest:
        tools = self._tools()
        choice = self.tool_choice
        return ChatRequest(
            model=ModelId(self.model),
            messages=self._messages(),
            user=user,
            sampling=sampling,
            stream=stream,
            tools=tools,
            tool_choice=choice.to_core() if choice is not None and tools else None,
            parallel_tool_calls=(
                False if choice is not None and choice.disable_parallel_tool_use else None
            ),
            response_format=response_format,
        )


class CountTokensBody(_Counted):
    def to_core(self, user: UserId = LOCAL_USER) -> ChatRequest:
        return self.chat(user, Sampling())


class MessagesBody(_Counted):
    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    stream: bool = False
    output_config: OutputConfig | None = None

    def to_core(self, user: UserId = LOCAL_USER) -> ChatRequest:
        sampling = Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_tokens=self.max_tokens,
            stop=tuple(self.stop_sequences or ()),
        )
        return self.chat(user, sampling, stream=self.stream, response_format=self._format())

    def _format(self) -> dict[str, Any] | None:
        output = self.output_config.format if self.output_config else None
        if output is None:
            return None
        return json_schema_format(
            output.schema_, name="output", param="output_config.format.schema"
        )
