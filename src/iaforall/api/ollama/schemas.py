"""Request bodies of the Ollama API, validated, then turned into core types (the `options`
are read by `options.py`)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iaforall.answering.structured import json_object_format, json_schema_format
from iaforall.api.ollama.options import options_sampling
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import ChatRequest, CompletionRequest, ModelId, Sampling, UserId


def response_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """`format`: "json" or a JSON schema -> our structured output."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return json_object_format()
    if isinstance(fmt, dict):
        return json_schema_format(fmt, param="format")
    raise InvalidRequest(f'Invalid format {fmt!r}: give "json" or a JSON schema.', param="format")


_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_part(b64: str, param: str) -> dict[str, Any]:
    """An Ollama base64 image -> an `image_url` part with a data URL, for iaforall.vision."""
    if b64.startswith("data:"):
        url = b64
    else:
        try:
            head = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4))
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "An image is not valid base64.", param=param, code="invalid_image"
            ) from None
        mime = "image/webp" if head[8:12] == b"WEBP" else "image/png"
        mime = next((m for magic, m in _MAGIC if head.startswith(magic)), mime)
        url = f"data:{mime};base64,{b64}"
    return {"type": "image_url", "image_url": {"url": url}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1)]
    stream: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    format: str | dict[str, Any] | None = None
    keep_alive: float | str | None = None
    think: bool | str | None = None

    @model_validator(mode="after")
    def _no_thinking(self) -> _Body:
        if self.think not in (None, False, "", "false"):
            raise InvalidRequest(
                f"'{self.model}' does not support thinking: leave 'think' out or false.",
                param="think",
                code="unsupported_parameter",
            )
        return self

    def sampling(self) -> tuple[Sampling, list[str]]:
        return options_sampling(self.options)


class ToolCallFunction(BaseModel):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    function: ToolCallFunction


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    thinking: str | None = None  # given back by clients; not shown to the model


class ChatBody(_Body):
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    def to_core(self, user: UserId) -> tuple[ChatRequest, list[str]]:
        sampling, ignored = self.sampling()
        return (
            ChatRequest(
                model=ModelId(self.model),
                messages=tuple(chat_messages(self.messages)),
                user=user,
                sampling=sampling,
                stream=True,
                tools=tuple(self.tools or ()),
                response_format=response_format(self.format),
            ),
            ignored,
        )


def chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Ollama's messages in OpenAI's form: images as parts, tool calls with ids."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []  # (id, name) of calls not yet answered
    for i, m in enumerate(messages):
        message: dict[str, Any] = {"role": m.role, "content": m.content or ""}
        if m.images:
            parts: list[dict[str, Any]] = [{"type": "text", "text": m.content or ""}]
            parts += [image_part(img, f"messages.{i}.images.{j}") for j, img in enumerate(m.images)]
            message["content"] = parts
        if m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                args = call.function.arguments
                call_id = f"call_{i}_{j}"
                pending.append((call_id, call.function.name))
                calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": args if isinstance(args, str) else json.dumps(args),
                        },
                    }
                )
            message["tool_calls"] = calls
        if m.role == "tool" and pending:
            match = next((p for p in pending if p[1] == m.tool_name), pending[0])
            pending.remove(match)
            message["tool_call_id"] = match[0]
        out.append(message)
    return out


class GenerateBody(_Body):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> GenerateBody:
        refused = {
            "suffix": "fill-in-the-middle (suffix) is not supported",
            "template": "IAForAll uses the model's own chat template (from its GGUF file); "
            "to write the whole prompt yourself, send raw: true",
            "context": "token contexts are not returned or taken: send the conversation to "
            "/api/chat instead",
        }
        for name, why in refused.items():
            if getattr(self, name):
                raise InvalidRequest(
                    f"The parameter '{name}' is not supported: {why}.",
                    param=name,
                    code="unsupported_parameter",
                )
        if self.raw and (self.system or self.format or self.images):
            raise InvalidRequest(
                "With raw: true the prompt is given to the model as it is: put the system "
                "text in the prompt, and leave 'format' and 'images' out.",
                param="raw",
                code="unsupported_parameter",
            )
        return self

    def to_core(self, user: UserId) -> tuple[ChatRequest | CompletionRequest, list[str]]:
        """Raw: the prompt as is; otherwise one user turn (and the system text) in the
        model's chat template, as Ollama does."""
        sampling, ignored = self.sampling()
        if self.raw:
            return (
                CompletionRequest(
                    ModelId(self.model), self.prompt, user=user, sampling=sampling, stream=True
                ),
                ignored,
            )
        turn = Message(role="user", content=self.prompt, images=self.images)
        messages = [Message(role="system", content=self.system)] if self.system else []
        chat = ChatRequest(
            model=ModelId(self.model),
            messages=tuple(chat_messages([*messages, turn])),
            user=user,
            sampling=sampling,
            stream=True,
            response_format=response_format(self.format),
        )
        return chat, ignored


class EmbedBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: Any = None
    prompt: str | None = None  # the legacy /api/embeddings
    truncate: bool = True
    dimensions: int | None = Field(None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    keep_alive: float | str | None = None


class NameBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    name: str | None = None  # older clients say "name"

    @property
    def target(self) -> str:
        target = self.model or self.name
        if not target:
            raise InvalidRequest("Missing required parameter 'model'.", param="model")
        return target


class PullBody(NameBody):
    stream: bool = True
    insecure: bool = False


class CopyBody(BaseModel):
    source: Annotated[str, Field(min_length=1)]
    destination: Annotated[str, Field(min_length=1)]
