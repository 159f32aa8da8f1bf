"""Engine chunks -> Ollama lines: text, tool calls, finish reasons, timings, the line."""

from __future__ import annotations

import json
from typing import Any

from iaforall.api.ollama.convert import Relay
from iaforall.core.events import Chunk, QueueUpdate
from iaforall.core.types import Usage


def chunk(choice: dict[str, Any] | None = None, **extra: Any) -> Chunk:
    choices = [{"index": 0, "finish_reason": None, **choice}] if choice else []
    return Chunk(
        json.dumps({"object": "chat.completion.chunk", "choices": choices, **extra}).encode()
    )


def test_tool_calls_arrive_whole_with_object_arguments() -> None:
    relay = Relay("m", "chat", resident=True)
    pieces = [
        {"index": 0, "id": "c1", "function": {"name": "weather", "arguments": '{"ci'}},
        {"index": 0, "function": {"arguments": 'ty": "Lyon"}'}},
        {"index": 1, "id": "c2", "function": {"name": "time", "arguments": "{}"}},
    ]
    for piece in pieces:
        assert relay.feed(chunk({"delta": {"tool_calls": [piece]}})) is None
    relay.feed(chunk({"delta": {}, "finish_reason": "tool_calls"}))
    line = relay.calls_line()
    assert line is not None and line["done"] is False
    assert line["message"]["tool_calls"] == [
        {"function": {"name": "weather", "arguments": {"city": "Lyon"}}},
        {"function": {"name": "time", "arguments": {}}},
    ]
    whole = relay.final(whole=True)
    assert whole["message"]["tool_calls"][0]["function"]["name"] == "weather"
    assert whole["done_reason"] == "stop"


def test_text_length_and_the_engines_timings() -> None:
    relay = Relay("m", "generate", resident=False)
    first = relay.feed(chunk({"text": "Hel"}))
    assert first is not None and first["response"] == "Hel" and "message" not in first
    relay.feed(chunk({"text": "lo", "finish_reason": "length"}))
    timings = {"prompt_n": 5, "prompt_ms": 12.5, "predicted_n": 2, "predicted_ms": 40.0}
    usage = Usage(prompt_tokens=5, completion_tokens=2)
    relay.feed(Chunk(chunk(usage={}, timings=timings).data, usage, usage_only=True))
    last = relay.final(whole=True)
    assert last["response"] == "Hello" and last["done_reason"] == "length"
    assert last["prompt_eval_duration"] == 12_500_000 and last["eval_duration"] == 40_000_000
    assert (last["prompt_eval_count"], last["eval_count"]) == (5, 2)
    assert last["total_duration"] >= last["load_duration"] >= 0


def test_waiting_in_line_makes_empty_lines_with_the_position() -> None:
    relay = Relay("m", "chat", resident=True)
    line = relay.feed(QueueUpdate(2, 3.04))
    assert line is not None and line["message"]["content"] == ""
    assert line["iaforall"] == {"queue": {"position": 2, "wait_s": 3.0}}
    assert relay.feed(QueueUpdate(0, 0.0)) is None  # its turn: nothing to show
