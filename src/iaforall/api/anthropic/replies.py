"""Answers in Anthropic's shape: a whole OpenAI `chat.completion` becomes a `Message`."""

from __future__ import annotations

import json
import secrets
from typing import Any


def message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def tool_use_id() -> str:
    """For a call llama.cpp gave no id (ids are what tool_result blocks answer)."""
    return f"toolu_{secrets.token_hex(12)}"


def stop_of(finish_reason: str | None, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """Anthropic's `stop_reason` and `stop_sequence` for an OpenAI `finish_reason`.

    llama.cpp says "stop" both at the end of the model's turn and on a stop sequence, without
    telling which: when `stop_sequences` were given, "stop" is taken as one of them (named
    when there was only one), since that is what a caller who sets them waits for."""
    if finish_reason == "tool_calls":
        return "tool_use", None
    if finish_reason == "length":
        return "max_tokens", None
    if finish_reason == "stop" and stops:
        return "stop_sequence", stops[0] if len(stops) == 1 else None
    return "end_turn", None


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Anthropic's `input` is; what does not parse as a JSON
    object is kept whole under "arguments" rather than lost."""
    if not arguments.strip():
        return {}
    try:
        found = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return found if isinstance(found, dict) else {"arguments": found}


def usage_of(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    return {
        "input_tokens": int(usage.get("prompt_tokens", 0)),
        "output_tokens": int(usage.get("completion_tokens", 0)),
    }


def message_of(result: dict[str, Any], *, model: str, stops: tuple[str, ...]) -> dict[str, Any]:
    """The `Message` for a whole `chat.completion` from llama.cpp."""
    choice = result["choices"][0]
    said = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if said.get("content"):
        content.append({"type": "text", "text": said["content"]})
    for call in said.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(),
                "name": function.get("name", ""),
                "input": tool_input(function.get("arguments") or ""),
            }
        )
    finish = choice.get("finish_reason")
    if any(block["type"] == "tool_use" for block in content):
        finish = "tool_calls"  # calls recovered from the text end the turn as calls too
    stop_reason, stop_sequence = stop_of(finish, stops)
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage_of(result.get("usage")),
    }
