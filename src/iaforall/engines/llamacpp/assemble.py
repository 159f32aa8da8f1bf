"""A whole answer (OpenAI response object) put together from streamed chunks.

Non-streaming requests are streamed from the worker too: llama.cpp notices a closed
connection only while streaming, so this is what lets a client that gives up free its slot.
"""

from __future__ import annotations

from typing import Any


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    if not chunks:
        return {}
    head = chunks[0]
    is_chat = head.get("object") == "chat.completion.chunk"
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    logprobs: list[Any] = []
    finish_reason = None
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            finish_reason = choice.get("finish_reason") or finish_reason
            if choice.get("logprobs") and choice["logprobs"].get("content"):
                logprobs.extend(choice["logprobs"]["content"])
            if not is_chat:
                text.append(choice.get("text") or "")
                continue
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                _merge_call(calls.setdefault(int(call.get("index", 0)), {}), call)
    answer: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    content = "".join(text)
    if is_chat:
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if calls:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        else:
            message["content"] = content
        answer["message"] = message
    else:
        answer["text"] = content
    answer["logprobs"] = {"content": logprobs} if logprobs else None
    result = {
        "id": head.get("id"),
        "object": "chat.completion" if is_chat else "text_completion",
        "created": head.get("created"),
        "model": head.get("model"),
        "system_fingerprint": head.get("system_fingerprint"),
        "choices": [answer],
    }
    if usage is not None:
        result["usage"] = usage
    return result


def _merge_call(target: dict[str, Any], delta: dict[str, Any]) -> None:
    for key in ("id", "type"):
        if delta.get(key):
            target[key] = delta[key]
    function = delta.get("function") or {}
    merged = target.setdefault("function", {"name": "", "arguments": ""})
    if function.get("name"):
        merged["name"] = function["name"]
    merged["arguments"] += function.get("arguments") or ""
