"""Recovering bare-JSON tool calls, and forcing a call by schema."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from iaforall.core.events import Chunk
from iaforall.core.types import ChatRequest, ModelId
from iaforall.engines.llamacpp.toolcalls import (
    forced_call_format,
    parse_calls,
    recover_in_stream,
)

NAMES = frozenset({"get_weather"})
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "get_weather", "arguments": {"city": "Paris"}}', [("get_weather", "Paris")]),
        (
            '```json\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n```',
            [("get_weather", "Lyon")],
        ),
        (
            '[{"name": "get_weather", "arguments": {"city": "A"}}, '
            '{"name": "get_weather", "arguments": {"city": "B"}}]',
            [("get_weather", "A"), ("get_weather", "B")],
        ),
        ('{"name": "delete_everything", "arguments": {}}', None),
        ('{"name": "get_weather", "arguments": {"city": "Paris"}} and more text', None),
        ("It is sunny in Paris.", None),
        ('{"city": "Paris"}', None),
    ],
)
def test_parse_calls(text: str, expected: list[tuple[str, str]] | None) -> None:
    calls = parse_calls(text, NAMES)
    if expected is None:
        assert calls is None
        return
    assert calls is not None
    got = [(c["function"]["name"], json.loads(c["function"]["arguments"])["city"]) for c in calls]
    assert got == expected
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)


def _chunk(content: str | None, finish: str | None = None) -> Chunk:
    delta = {} if content is None else {"content": content}
    body: dict[str, Any] = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return Chunk(json.dumps(body).encode())


async def _stream(*chunks: Chunk) -> AsyncGenerator[Chunk, None]:
    for chunk in chunks:
        yield chunk


async def _collect(*chunks: Chunk) -> list[dict[str, Any]]:
    return [json.loads(c.data) async for c in recover_in_stream(_stream(*chunks), NAMES)]


async def test_stream_of_a_bare_call_becomes_one_tool_call_delta() -> None:
    out = await _collect(
        _chunk(""),
        _chunk('{"name": "get_'),
        _chunk('weather", "arguments": {}}'),
        _chunk(None, "stop"),
    )
    assert len(out) == 2
    assert out[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert out[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert out[0]["id"] == "chatcmpl-x"


async def test_plain_text_streams_through_unchanged() -> None:
    chunks = [_chunk(""), _chunk("Sunny"), _chunk(" today"), _chunk(None, "stop")]
    out = await _collect(*chunks)
    assert out == [json.loads(c.data) for c in chunks]


async def test_json_that_is_not_a_call_is_released_as_it_came() -> None:
    chunks = [_chunk('{"answer": '), _chunk("42}"), _chunk(None, "stop")]
    out = await _collect(*chunks)
    assert out == [json.loads(c.data) for c in chunks]


def _request(**extra: Any) -> ChatRequest:
    return ChatRequest(
        model=ModelId("m"), messages=({"role": "user", "content": "x"},), tools=(TOOL,), **extra
    )


def test_forced_choice_becomes_a_schema() -> None:
    assert forced_call_format(_request(tool_choice="auto")) is None
    fmt = forced_call_format(_request(tool_choice="required"))
    assert fmt is not None and fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"]["name"] == {"const": "get_weather"}
    named = forced_call_format(
        _request(tool_choice={"type": "function", "function": {"name": "get_weather"}})
    )
    assert named == fmt
    assert (
        forced_call_format(
            _request(tool_choice="required", response_format={"type": "json_object"})
        )
        is None
    )
