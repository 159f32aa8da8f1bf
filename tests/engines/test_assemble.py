"""Whole answers assembled from streamed chunks, as OpenAI returns them."""

from __future__ import annotations

from typing import Any

from iaforall.engines.llamacpp.assemble import assemble

HEAD = {"id": "chatcmpl-1", "created": 5, "model": "m", "system_fingerprint": "b0"}


def chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra}
    return {**HEAD, "object": "chat.completion.chunk", "choices": [choice]}


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_chat_text_usage_and_logprobs() -> None:
    lp = {"content": [{"token": "a", "logprob": -0.1}]}
    result = assemble(
        [
            chat_chunk({"role": "assistant", "content": None}),
            chat_chunk({"content": "Bon"}, logprobs=lp),
            chat_chunk({"content": "jour"}, logprobs=lp),
            chat_chunk({}, "stop"),
            {**HEAD, "object": "chat.completion.chunk", "choices": [], "usage": USAGE},
        ]
    )
    assert result == {
        **HEAD,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Bonjour"},
                "logprobs": {"content": lp["content"] * 2},
            }
        ],
        "usage": USAGE,
    }


def test_tool_call_deltas_are_merged() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a"'},
    }
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    result = assemble(
        [
            chat_chunk({"tool_calls": [call]}),
            chat_chunk({"tool_calls": [more]}),
            chat_chunk({}, "tool_calls"),
        ]
    )
    message = result["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert result["choices"][0]["finish_reason"] == "tool_calls"


def test_text_completion() -> None:
    chunks = [
        {
            **HEAD,
            "object": "text_completion",
            "choices": [{"index": 0, "text": t, "finish_reason": f}],
        }
        for t, f in ((" Par", None), ("is", "length"))
    ]
    result = assemble(chunks)
    assert result["object"] == "text_completion"
    assert result["choices"][0]["text"] == " Paris"
    assert result["choices"][0]["finish_reason"] == "length"
