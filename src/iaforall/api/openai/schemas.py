"""Request bodies of the OpenAI API, validated, then turned into core types.

Unknown fields that do not change the answer (`user`, `metadata`, `store`...) are accepted and
ignored, like OpenAI does; fields that would change it and that we cannot honour are refused
with a clear message rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iaforall.answering.structured import json_object_format, json_schema_format
from iaforall.api.extension import IAForAllOptions
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import (
    LOCAL_USER,
    ChatRequest,
    CompletionRequest,
    ModelId,
    Sampling,
    UserId,
)

_REFUSED_FIELDS = {
    "functions": "use 'tools' instead of the deprecated 'functions'",
    "function_call": "use 'tool_choice' instead of the deprecated 'function_call'",
    "audio": "audio output is not available on this endpoint",
    "modalities": "only text output is available on this endpoint",
    "prediction": "predicted outputs are not supported",
    "logit_bias": "logit_bias is not supported",
    "web_search_options": "web search is not available: IAForAll never leaves your machine",
    "best_of": "best_of is not supported",
    "suffix": "suffix (fill-in-the-middle) is not supported",
    "echo": "echo is not supported",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> _Body:
        for name in (self.model_extra or {}).keys() & _REFUSED_FIELDS.keys():
            raise InvalidRequest(
                f"The parameter '{name}' is not supported: {_REFUSED_FIELDS[name]}.",
                param=name,
                code="unsupported_parameter",
            )
        return self


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    """An image (a data URL or an http(s) URL), read by `iaforall.vision` before generation."""

    type: Literal["image_url"]
    image_url: ImageUrl


class OtherPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: (
        str
        | list[Annotated[TextPart | ImagePart | OtherPart, Field(union_mode="left_to_right")]]
        | None
    ) = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def to_core(self, index: int) -> dict[str, Any]:
        message = self.model_dump(exclude_none=True)
        if self.role == "developer":  # OpenAI's newer name for the system role
            message["role"] = "system"
        if isinstance(self.content, list):
            for part in self.content:
                if not isinstance(part, TextPart | ImagePart):
                    raise InvalidRequest(
                        f"Content parts of type '{part.type}' are not supported; "
                        "send text or image_url parts.",
                        param=f"messages.{index}.content",
                        code="unsupported_content",
                    )
            if any(isinstance(part, ImagePart) for part in self.content):
                # kept as parts: iaforall.vision turns them into what the model can take
                message["content"] = [p.model_dump(exclude_none=True) for p in self.content]
            else:
                message["content"] = "".join(
                    p.text for p in self.content if isinstance(p, TextPart)
                )
        return message


class StreamOptions(BaseModel):
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "response"
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _check_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise InvalidRequest(
                "response_format of type 'json_schema' needs a 'json_schema' object.",
                param="response_format.json_schema",
            )
        self.to_core()  # an invalid schema is refused here, with the request
        return self

    def to_core(self) -> dict[str, Any] | None:
        if self.type == "text":
            return None
        if self.type == "json_object" or self.json_schema is None:
            return json_object_format()
        described = self.json_schema
        core = json_schema_format(
            described.schema_,
            name=described.name,
            strict=described.strict,
            param="response_format.json_schema.schema",
        )
        core["json_schema"] |= described.model_extra or {}
        return core


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    type: Literal["function"]
    function: FunctionDef


class FunctionName(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    """`tool_choice` naming the function the model must call."""

    type: Literal["function"]
    function: FunctionName


Temperature = Annotated[float, Field(ge=0, le=2)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
PositiveInt = Annotated[int, Field(ge=1)]


class _Sampled(_Body):
    model: Annotated[str, Field(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: PositiveInt | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    n: int = 1
    user: str | None = None

    @model_validator(mode="after")
    def _only_one_choice(self) -> _Sampled:
        if self.n != 1:
            raise InvalidRequest(
                f"n={self.n} is not supported: this server returns one choice per request. "
                "Send several requests instead.",
                param="n",
                code="unsupported_parameter",
            )
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def _stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionBody(_Sampled):
    messages: list[Message]
    max_completion_tokens: PositiveInt | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    iaforall: IAForAllOptions = Field(default_factory=IAForAllOptions)

    @model_validator(mode="after")
    def _messages_present(self) -> ChatCompletionBody:
        if not self.messages:
            raise InvalidRequest(
                "'messages' is empty: send at least one message.", param="messages"
            )
        return self

    @model_validator(mode="after")
    def _tool_choice_among_tools(self) -> ChatCompletionBody:
        """As OpenAI: a demanded call needs tools, and a named one must be among them."""
        choice = self.tool_choice
        names = {t.function.name for t in self.tools or ()}
        if choice == "required" and not names:
            raise InvalidRequest(
                "'tool_choice' is 'required' but no 'tools' are given.", param="tool_choice"
            )
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise InvalidRequest(
                f"'tool_choice' names the function '{choice.function.name}', which is not "
                "among the 'tools' given.",
                param="tool_choice",
            )
        return self

    def to_core(self, user: UserId = LOCAL_USER) -> ChatRequest:
        return ChatRequest(
            model=ModelId(self.model),
            messages=tuple(m.to_core(i) for i, m in enumerate(self.messages)),
            user=user,
            sampling=Sampling(
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_completion_tokens or self.max_tokens,
                stop=self._stops(),
                seed=self.seed,
                presence_penalty=self.presence_penalty,
                frequency_penalty=self.frequency_penalty,
                logprobs=self.logprobs,
                top_logprobs=self.top_logprobs,
            ),
            stream=self.stream,
            tools=tuple(t.model_dump(exclude_none=True) for t in self.tools or ()),
            tool_choice=(
                self.tool_choice.model_dump()
                if isinstance(self.tool_choice, NamedToolChoice)
                else self.tool_choice
            ),
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=self.response_format.to_core() if self.response_format else None,
        )


class CompletionBody(_Sampled):
    prompt: str | list[str]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None

    def to_core(self, user: UserId = LOCAL_USER) -> CompletionRequest:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise InvalidRequest(
                    "Send one prompt per request (a string, or a list of one string).",
                    param="prompt",
                    code="unsupported_parameter",
                )
            prompt = prompt[0]
        return CompletionRequest(
            model=ModelId(self.model),
            prompt=prompt,
            user=user,
            sampling=Sampling(
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_tokens,
                stop=self._stops(),
                seed=self.seed,
                presence_penalty=self.presence_penalty,
                frequency_penalty=self.frequency_penalty,
                logprobs=self.logprobs is not None,
                top_logprobs=self.logprobs or None,
            ),
            stream=self.stream,
        )
