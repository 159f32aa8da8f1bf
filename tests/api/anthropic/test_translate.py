"""Anthropic Messages <-> core types, pure: requests in, recorded llama.cpp chunks out.

The events are read back with the official `anthropic` SDK's own types and accumulator, so a
shape the SDK would not take fails here, without a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter, ValidationError

from iaforall.api.anthropic.events import MessageEvents, queue_ping
from iaforall.api.anthropic.replies import message_of, stop_of, tool_input
from iaforall.api.anthropic.schemas import CountTokensBody, MessagesBody
from iaforall.core.errors import InvalidRequest
from iaforall.core.events import Chunk
from iaforall.core.types import Usage
from tests.sse import events

RECORDED = Path(__file__).parent / "recorded"
EVENT = TypeAdapter(RawMessageStreamEvent)
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "tiny",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def recorded_chunks(name: str) -> list[Chunk]:
    """llama.cpp's chunks as the engine hands them on (the usage parsed on the last)."""
    chunks = []
    for frame in (RECORDED / f"{name}.sse").read_bytes().split(b"\n\n"):
        data = frame.removeprefix(b"data: ")
        if not data or data == b"[DONE]":
            continue
        parsed = json.loads(data)
        if "usage" in parsed:
            usage = Usage(parsed["usage"]["prompt_tokens"], parsed["usage"]["completion_tokens"])
            chunks.append(Chunk(data, usage, not parsed["choices"]))
        else:
            chunks.append(Chunk(data))
    return chunks


def streamed(name: str, stops: tuple[str, ...] = ()) -> tuple[list[Any], Message]:
    """The events for a recorded stream, checked against the SDK's types, and the message the
    SDK builds from them."""
    writer = MessageEvents("msg_1", "tiny:latest", stops)
    raw = writer.start()
    for chunk in recorded_chunks(name):
        raw += writer.feed(chunk)
    raw += writer.finish()
    found = []
    snapshot, json_bufs = None, {}
    for name_, data in events(raw.decode()):
        assert data["type"] == name_
        if name_ == "ping":
            continue
        parsed = EVENT.validate_python(data)
        found.append(parsed)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return found, Message.model_validate(snapshot.to_dict())


# --- requests in ---------------------------------------------------------------------------


def test_system_text_blocks_and_sampling_become_a_chat_request() -> None:
    chat = MessagesBody.model_validate(
        body(
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            metadata={"user_id": "someone"},
        )
    ).to_core()
    assert chat.messages[0] == {"role": "system", "content": "Be brief.\n\nBe kind."}
    assert chat.messages[1] == {"role": "user", "content": "hi"}
    s = chat.sampling
    assert (s.temperature, s.top_p, s.top_k, s.max_tokens, s.stop) == (0.2, 0.9, 40, 32, ("END",))


def test_images_become_image_parts_for_vision() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.png"}},
    ]
    chat = MessagesBody.model_validate(
        body(messages=[{"role": "user", "content": content}])
    ).to_core()
    parts = chat.messages[0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64,AAAA"
    assert parts[2]["image_url"]["url"] == "https://example.org/cat.png"


def test_tool_use_and_tool_result_become_tool_calls_and_tool_messages() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no such city"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    chat = MessagesBody.model_validate(
        body(messages=history, tools=[WEATHER], tool_choice={"type": "any"})
    ).to_core()
    _user, assistant, tool1, tool2, thanks = chat.messages
    assert assistant["content"] == "Let me look."
    call = assistant["tool_calls"][0]
    assert call["id"] == "toolu_1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert tool1 == {"role": "tool", "tool_call_id": "toolu_1", "content": "21 C"}
    assert tool2["content"] == "Error: no such city"
    assert thanks == {"role": "user", "content": "Thanks"}
    assert chat.tools[0]["function"]["parameters"] == WEATHER["input_schema"]
    assert chat.tool_choice == "required"


@pytest.mark.parametrize(
    ("choice", "expected", "tools_kept"),
    [
        ({"type": "auto"}, "auto", True),
        ({"type": "any"}, "required", True),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
            True,
        ),
        ({"type": "none"}, None, False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, tools_kept: bool) -> None:
    chat = MessagesBody.model_validate(body(tools=[WEATHER], tool_choice=choice)).to_core()
    assert chat.tool_choice == expected
    assert bool(chat.tools) is tools_kept


def test_disable_parallel_tool_use() -> None:
    choice = {"type": "auto", "disable_parallel_tool_use": True}
    chat = MessagesBody.model_validate(body(tools=[WEATHER], tool_choice=choice)).to_core()
    assert chat.parallel_tool_calls is False


def test_output_format_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    output = {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}
    chat = MessagesBody.model_validate(body(output_config=output)).to_core()
    assert chat.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def test_thinking_blocks_in_the_history_are_left_out() -> None:
    turn = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "Hello"},
        ],
    }
    chat = MessagesBody.model_validate(
        body(messages=[{"role": "user", "content": "hi"}, turn], thinking={"type": "disabled"})
    ).to_core()
    assert chat.messages[-1] == {"role": "assistant", "content": "Hello"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"mcp_servers": [{"type": "url", "url": "http://x"}]}, "mcp_servers"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0",
        ),
        ({"tool_choice": {"type": "tool", "name": "nope"}, "tools": [WEATHER]}, "tool_choice.name"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"messages": []}, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
                    }
                ]
            },
            "messages.0.content.0",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        MessagesBody.model_validate(body(**extra)).to_core()
    assert refused.value.param == param


def test_a_known_block_in_a_form_not_taken_says_which_form_is() -> None:
    image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    with pytest.raises(InvalidRequest) as refused:
        MessagesBody.model_validate(body(messages=[{"role": "user", "content": [image]}])).to_core()
    assert "'base64'" in refused.value.message and refused.value.param == "messages.0.content.0"


def test_max_tokens_is_required() -> None:
    raw = body()
    del raw["max_tokens"]
    with pytest.raises(ValidationError):
        MessagesBody.model_validate(raw)
    assert CountTokensBody.model_validate(raw).to_core().sampling.max_tokens is None


# --- whole answers out ---------------------------------------------------------------------


def test_whole_text_answer_is_a_message() -> None:
    result = json.loads((RECORDED / "text.json").read_text())
    message = Message.model_validate(message_of(result, model="smollm2:135m", stops=()))
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == result["choices"][0]["message"]["content"]
    assert message.stop_reason == "max_tokens"  # the recording ran out of its 12 tokens
    assert message.usage.input_tokens == result["usage"]["prompt_tokens"]
    assert message.usage.output_tokens == result["usage"]["completion_tokens"]


def test_whole_tool_call_is_a_tool_use_block() -> None:
    result = json.loads((RECORDED / "tool_call.json").read_text())
    message = Message.model_validate(message_of(result, model="qwen", stops=()))
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "Paris"} and block.id.startswith("call_")


def test_stop_reasons() -> None:
    assert stop_of("stop", ()) == ("end_turn", None)
    assert stop_of("length", ("x",)) == ("max_tokens", None)
    assert stop_of("tool_calls", ()) == ("tool_use", None)
    assert stop_of("stop", ("5",)) == ("stop_sequence", "5")
    assert stop_of("stop", ("a", "b")) == ("stop_sequence", None)


def test_tool_input_keeps_what_is_not_an_object() -> None:
    assert tool_input('{"a": 1}') == {"a": 1}
    assert tool_input("") == {}
    assert tool_input("not json") == {"arguments": "not json"}
    assert tool_input("[1]") == {"arguments": [1]}


# --- streams out ---------------------------------------------------------------------------


def test_recorded_text_stream_is_anthropics_event_sequence() -> None:
    found, message = streamed("text")
    kinds = [e.type for e in found]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    whole = json.loads((RECORDED / "text.json").read_text())
    assert message.content[0].type == "text"
    assert message.content[0].text == whole["choices"][0]["message"]["content"]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 12 and message.usage.input_tokens > 0


def test_recorded_stop_sequence_stream() -> None:
    _, message = streamed("stop_sequence", stops=("5",))
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "5"
    assert message.content[0].type == "text" and message.content[0].text.endswith("4, ")


def test_recorded_tool_call_stream_is_a_tool_use_block() -> None:
    found, message = streamed("tool_call")
    start = next(e for e in found if e.type == "content_block_start")
    assert start.content_block.type == "tool_use" and start.content_block.input == {}
    deltas = [e.delta for e in found if e.type == "content_block_delta"]
    assert deltas and all(d.type == "input_json_delta" for d in deltas)
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.input == {"city": "Paris"}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> Chunk:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return Chunk(json.dumps({"object": "chat.completion.chunk", "choices": [choice]}).encode())


def test_text_then_two_calls_in_pieces_make_three_blocks() -> None:
    writer = MessageEvents("msg_1", "m", ())
    raw = writer.start({"decisions": []})
    pieces = [
        _chunk({"content": "Checking."}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "a", "arguments": '{"x"'}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk(
            {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "b", "arguments": "{}"}}]}
        ),
        _chunk({}, "tool_calls"),
    ]
    for chunk in pieces:
        raw += writer.feed(chunk)
    writer.attach({"decisions": ["late"]})
    raw += writer.finish()
    parsed = events(raw.decode())
    assert parsed[0][1]["message"]["iaforall"] == {"decisions": []}
    assert parsed[-2][1]["iaforall"] == {"decisions": ["late"]}
    snapshot, json_bufs = None, {}
    for name, data in parsed:
        if name != "ping":
            snapshot = accumulate_event(
                event=EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=json_bufs
            )
    assert snapshot is not None
    blocks = [b.to_dict() for b in snapshot.content]
    assert blocks[0] == {"type": "text", "text": "Checking."}
    assert blocks[1] == {"type": "tool_use", "id": "c1", "name": "a", "input": {"x": 1}}
    assert blocks[2] == {"type": "tool_use", "id": "c2", "name": "b", "input": {}}
    assert snapshot.stop_reason == "tool_use"


def test_queue_ping_is_a_ping_with_the_place_in_line() -> None:
    ((name, data),) = events(queue_ping(3, 4.2).decode())
    assert name == "ping" and data == {
        "type": "ping",
        "iaforall": {"queue": {"position": 3, "wait_s": 5}},
    }
