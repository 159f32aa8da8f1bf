"""Responses in and out of the core: input items -> a chat request; llama.cpp's whole
chat.completion -> a Response object. Pure functions over plain JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iaforall.api.responses.schemas import (
    FunctionCallItem,
    FunctionOutputItem,
    ItemReference,
    MessageItem,
    ResponseBody,
    new_item_id,
)
from iaforall.core.errors import InvalidRequest
from iaforall.core.types import ChatRequest, ModelId, Sampling, UserId


def input_items(body: ResponseBody, earlier: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's own input items, normalised, with `item_reference`s resolved among the
    `earlier` items of its chain (those of the responses before it)."""
    by_id = {item["id"]: item for item in earlier if "id" in item}
    items: list[dict[str, Any]] = []
    for i, item in enumerate(body.new_items()):
        param = f"input.{i}"
        if isinstance(item, ItemReference):
            found = by_id.get(item.id)
            if found is None:
                raise InvalidRequest(
                    f"The item '{item.id}' is not among the items of the responses before "
                    "this one: refer only to items of the 'previous_response_id' chain.",
                    param=f"{param}.id",
                )
            items.append(found)
        elif isinstance(item, MessageItem | FunctionCallItem | FunctionOutputItem):
            items.append(item.normalised(param))
        else:
            raise InvalidRequest(
                f"Input items of type '{item.type}' are not supported: send messages, "
                "function_call and function_call_output items.",
                param=f"{param}.type",
                code="unsupported_value",
            )
    return items


def chat_messages(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalised items as the chat messages a model's template takes: a function call joins
    the assistant message before it, its output becomes a `tool` message."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append(_chat_message(item))
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else "".join(p["text"] for p in output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
    return messages


def _chat_message(item: dict[str, Any]) -> dict[str, Any]:
    role = "system" if item["role"] == "developer" else item["role"]
    parts = item["content"]
    if role == "assistant":
        text = "".join(p.get("text") or p.get("refusal") or "" for p in parts)
        return {"role": "assistant", "content": text}
    if not any(p["type"] == "input_image" for p in parts):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    # kept as parts: the pipeline reads the images into what the model can take
    return {"role": role, "content": [_chat_part(p) for p in parts]}


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "input_text":
        return {"type": "text", "text": part["text"]}
    image: dict[str, Any] = {"url": part["image_url"]}
    if part.get("detail") in ("auto", "low", "high"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def chat_request(
    body: ResponseBody, context: Sequence[dict[str, Any]], user: UserId
) -> ChatRequest:
    """The core request: `instructions` first (never carried to the next response, as OpenAI
    does), then the whole context. Empty instructions are kept: they replace the hidden
    prompt some chat templates add when there is no system message."""
    messages = chat_messages(context)
    if not messages:
        raise InvalidRequest("'input' is empty: send a message or an item.", param="input")
    system = [] if body.instructions is None else [{"role": "system", "content": body.instructions}]
    return ChatRequest(
        model=ModelId(body.model),
        messages=tuple(system + messages),
        user=user,
        sampling=Sampling(
            temperature=body.temperature,
            top_p=body.top_p,
            max_tokens=body.max_output_tokens,
        ),
        stream=bool(body.stream),
        tools=tuple(t.to_core() for t in body.functions),
        tool_choice=body.core_tool_choice(),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=body.text_format.to_core(),
    )


@dataclass(frozen=True)
class Shell:
    """What a Response object says of its request, before any output."""

    id: str
    created_at: int
    model: str
    body: ResponseBody

    @classmethod
    def new(cls, body: ResponseBody, model: str) -> Shell:
        return cls(new_item_id("resp"), int(time.time()), model, body)

    def response(
        self,
        status: str,
        output: Sequence[dict[str, Any]] = (),
        usage: dict[str, Any] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.model,
            "output": list(output),
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": body.store is not False,
            "temperature": body.temperature,
            "text": {"format": body.text_format.shown()},
            "tool_choice": body.shown_tool_choice(),
            "tools": [t.shown() for t in body.functions],
            "top_p": body.top_p,
            "truncation": "disabled",
            "usage": usage,
            "user": body.user,
            "metadata": body.metadata or {},
            **more,
        }

    def finished(
        self, output: Sequence[dict[str, Any]], usage: dict[str, Any] | None, finish: str | None
    ) -> dict[str, Any]:
        """The Response once the model stopped: `incomplete` when it hit max_output_tokens."""
        if finish == "length":
            return self.response(
                "incomplete",
                output,
                usage,
                incomplete_details={"reason": "max_output_tokens"},
            )
        return self.response("completed", output, usage, completed_at=int(time.time()))


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """llama.cpp's chat usage in the Responses shape."""
    if not usage:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return token_usage(
        int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), int(cached)
    )


def token_usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def message_item(
    text: str, *, item_id: str | None = None, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id or new_item_id("msg"),
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(
    call_id: str,
    name: str,
    arguments: str,
    *,
    item_id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    return {
        "id": item_id or new_item_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def whole_response(shell: Shell, result: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's whole chat.completion as a Response object."""
    choice = (result.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = message.get("tool_calls") or []
    output: list[dict[str, Any]] = []
    if message.get("content") or not calls:
        output.append(message_item(message.get("content") or ""))
    for call in calls:
        function = call.get("function") or {}
        call_id = call.get("id") or new_item_id("call")
        output.append(
            function_call_item(call_id, function.get("name", ""), function.get("arguments") or "")
        )
    return shell.finished(output, usage_of(result.get("usage")), choice.get("finish_reason"))
