"""The request body of `POST /v1/responses`, validated; its input items normalised to the
item shape the API lists back (`input_items`), each with an id.

Fields that do not change the answer (`user`, `include`, `service_tier`...) are accepted and
ignored, as OpenAI does; fields that would change it and that we cannot honour are refused
with a clear message rather than silently ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from iaforall.answering.structured import json_object_format, json_schema_format
from iaforall.api.extension import IAForAllOptions
from iaforall.core.errors import InvalidRequest

_REFUSED_FIELDS = {
    "background": "background responses are not available: stream the answer instead",
    "conversation": "conversations are not available here: use 'previous_response_id'",
    "prompt": "saved prompts are not available: send 'instructions' and 'input'",
    "reasoning": "reasoning settings are not available for the models served here",
    "top_logprobs": "log probabilities are not available on this endpoint",
    "context_management": "context compaction is not available",
    "moderation": "moderation models are not available: the operator's published rules apply",
}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _unsupported(what: str, param: str, hint: str) -> InvalidRequest:
    return InvalidRequest(f"{what} not supported: {hint}.", param=param, code="unsupported_value")


class _Open(BaseModel):
    """What OpenAI's objects may carry beyond the fields read here is accepted."""

    model_config = ConfigDict(extra="allow")


# ---- content parts ------------------------------------------------------------------------


class TextPart(_Open):
    """`input_text` (a person's words) or `output_text` (an earlier answer's)."""

    type: Literal["input_text", "output_text"]
    text: str


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


class ImagePart(_Open):
    """An image as a data URL or an http(s) URL, read like chat's `image_url` parts."""

    type: Literal["input_image"]
    image_url: Annotated[str, Field(min_length=1)] | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] = "auto"


class OtherPart(_Open):
    type: str


# Union tags are CamelCase: error locations then name only what the client wrote.
_PART_TAGS = {
    "input_text": "InputText",
    "output_text": "OutputText",
    "refusal": "Refusal",
    "input_image": "InputImage",
}


def _part_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return _PART_TAGS.get(str(kind), "Other")


Part = Annotated[
    Annotated[TextPart, Tag("InputText")]
    | Annotated[TextPart, Tag("OutputText")]
    | Annotated[RefusalPart, Tag("Refusal")]
    | Annotated[ImagePart, Tag("InputImage")]
    | Annotated[OtherPart, Tag("Other")],
    Discriminator(_part_tag),
]


# ---- input items --------------------------------------------------------------------------


class MessageItem(_Open):
    """A message: `type` may be left out, and `content` may be a plain string."""

    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]

    def normalised(self, param: str) -> dict[str, Any]:
        parts = (
            [TextPart(type="input_text", text=self.content)]
            if isinstance(self.content, str)
            else self.content
        )
        if self.role == "assistant":
            content = [_output_part(p, f"{param}.content.{i}") for i, p in enumerate(parts)]
        else:
            content = [_input_part(p, f"{param}.content.{i}") for i, p in enumerate(parts)]
        return {
            "id": self.id or new_item_id("msg"),
            "type": "message",
            "role": self.role,
            "status": "completed",
            "content": content,
        }


def _input_part(part: Part, param: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        if part.image_url is None:
            raise _unsupported(
                "Images by 'file_id' are", param, "send 'image_url' as a data URL or an https URL"
            )
        return {"type": "input_image", "image_url": part.image_url, "detail": part.detail}
    raise _unsupported(
        f"Content parts of type '{part.type}' are", param, "send input_text or input_image parts"
    )


def _output_text(part: Part, param: str) -> dict[str, Any]:
    """A function's output: text only (no model here reads images in a tool's answer)."""
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    raise _unsupported(
        f"Function output parts of type '{part.type}' are", param, "send the output as text"
    )


def _output_part(part: Part, param: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "output_text", "text": part.text, "annotations": []}
    if isinstance(part, RefusalPart):
        return {"type": "refusal", "refusal": part.refusal}
    raise _unsupported(
        f"Assistant content parts of type '{part.type}' are",
        param,
        "an assistant message holds output_text or refusal parts",
    )


class FunctionCallItem(_Open):
    """A call the model made earlier, given back with its output."""

    type: Literal["function_call"]
    id: str | None = None
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str

    def normalised(self, param: str) -> dict[str, Any]:
        return {
            "id": self.id or new_item_id("fc"),
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "status": "completed",
        }


class FunctionOutputItem(_Open):
    """What the caller's function returned, for the call `call_id`."""

    type: Literal["function_call_output"]
    id: str | None = None
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[Part]

    def normalised(self, param: str) -> dict[str, Any]:
        output: str | list[dict[str, Any]] = (
            self.output
            if isinstance(self.output, str)
            else [_output_text(p, f"{param}.output.{i}") for i, p in enumerate(self.output)]
        )
        return {
            "id": self.id or new_item_id("fco"),
            "type": "function_call_output",
            "call_id": self.call_id,
            "output": output,
            "status": "completed",
        }


class ItemReference(_Open):
    """An item of an earlier stored response, by its id (resolved in the chain)."""

    type: Literal["item_reference"]
    id: Annotated[str, Field(min_length=1)]


class OtherItem(_Open):
    type: str


_ITEM_TAGS = {
    "message": "Message",
    "function_call": "FunctionCall",
    "function_call_output": "FunctionCallOutput",
    "item_reference": "ItemReference",
}


def _item_tag(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "")
    return _ITEM_TAGS.get(str(kind), "Other")


InputItem = Annotated[
    Annotated[MessageItem, Tag("Message")]
    | Annotated[FunctionCallItem, Tag("FunctionCall")]
    | Annotated[FunctionOutputItem, Tag("FunctionCallOutput")]
    | Annotated[ItemReference, Tag("ItemReference")]
    | Annotated[OtherItem, Tag("Other")],
    Discriminator(_item_tag),
]


# ---- tools and formats --------------------------------------------------------------------


class FunctionTool(_Open):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    def to_core(self) -> dict[str, Any]:
        """The chat form llama.cpp takes."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters or {"type": "object", "properties": {}}
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    def shown(self) -> dict[str, Any]:
        """As the Response object echoes it."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": self.strict,
        }


class OtherTool(_Open):
    type: str


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "Function" if kind == "function" else "Other"


Tool = Annotated[
    Annotated[FunctionTool, Tag("Function")] | Annotated[OtherTool, Tag("Other")],
    Discriminator(_tool_tag),
]


class FunctionChoice(BaseModel):
    type: Literal["function"]
    name: str


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Field(max_length=64)] = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _needs_a_schema(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise InvalidRequest(
                "text.format of type 'json_schema' needs a 'schema'.", param="text.format.schema"
            )
        if self.type == "json_schema":
            self.to_core()  # an invalid JSON schema is refused here, naming it
        return self

    def to_core(self) -> dict[str, Any] | None:
        """The chat `response_format` llama.cpp constrains the answer with."""
        if self.type == "text":
            return None
        if self.type == "json_object":
            return json_object_format()
        assert self.schema_ is not None
        return json_schema_format(
            self.schema_, name=self.name, strict=self.strict, param="text.format.schema"
        )

    def shown(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        return {
            "type": "json_schema",
            "name": self.name,
            "schema": self.schema_,
            "description": self.description,
            "strict": self.strict,
        }


class TextConfig(_Open):
    format: TextFormat = Field(default_factory=lambda: TextFormat(type="text"))
    verbosity: Literal["low", "medium", "high"] | None = None


# ---- the body -----------------------------------------------------------------------------


class ResponseBody(_Open):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[InputItem]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = True
    stream: bool | None = False
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: (
        Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None
    ) = None
    user: str | None = None
    iaforall: IAForAllOptions = Field(default_factory=IAForAllOptions)

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ResponseBody:
        extra = self.model_extra or {}
        for name in extra.keys() & _REFUSED_FIELDS.keys():
            if extra[name] not in (None, False):  # sent as null or false: nothing asked
                raise InvalidRequest(
                    f"The parameter '{name}' is not supported: {_REFUSED_FIELDS[name]}.",
                    param=name,
                    code="unsupported_parameter",
                )
        if self.truncation == "auto":
            raise InvalidRequest(
                "truncation 'auto' is not supported: an input longer than the model's context "
                "is refused. Start from an earlier response, or send less input.",
                param="truncation",
                code="unsupported_value",
            )
        for i, tool in enumerate(self.tools or ()):
            if isinstance(tool, OtherTool):
                raise _unsupported(
                    f"Tools of type '{tool.type}' are",
                    f"tools.{i}",
                    "only 'function' tools are available (IAForAll never leaves your machine)",
                )
        return self

    @model_validator(mode="after")
    def _tool_choice_among_tools(self) -> ResponseBody:
        """As OpenAI: a demanded call needs tools, and a named one must be among them."""
        choice = self.tool_choice
        names = {t.name for t in self.functions}
        if choice == "required" and not names:
            raise InvalidRequest(
                "'tool_choice' is 'required' but no 'tools' are given.", param="tool_choice"
            )
        if isinstance(choice, FunctionChoice) and choice.name not in names:
            raise InvalidRequest(
                f"'tool_choice' names the function '{choice.name}', which is not among the "
                "'tools' given.",
                param="tool_choice",
            )
        return self

    @property
    def functions(self) -> list[FunctionTool]:
        return [t for t in self.tools or () if isinstance(t, FunctionTool)]

    @property
    def text_format(self) -> TextFormat:
        return self.text.format if self.text else TextFormat(type="text")

    def core_tool_choice(self) -> str | dict[str, Any] | None:
        choice = self.tool_choice
        if isinstance(choice, FunctionChoice):
            return {"type": "function", "function": {"name": choice.name}}
        return choice

    def shown_tool_choice(self) -> str | dict[str, Any]:
        choice = self.tool_choice
        if isinstance(choice, FunctionChoice):
            return {"type": "function", "name": choice.name}
        return choice or "auto"

    def new_items(self) -> list[InputItem]:
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        return list(self.input)
