"""The Responses adapter's translation, pure: request -> core chat request, llama.cpp's whole
answer and recorded stream chunks -> Response objects and typed events, checked against the
official `openai` SDK's own types (the truth for wire shapes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseItem, ResponseStreamEvent
from pydantic import TypeAdapter, ValidationError

from iaforall.api.responses.events import ResponseEvents, sse_frame
from iaforall.api.responses.schemas import ResponseBody
from iaforall.api.responses.translate import (
    Shell,
    chat_messages,
    chat_request,
    input_items,
    whole_response,
)
from iaforall.core.errors import InvalidRequest, RequestTimeout
from iaforall.core.events import Chunk, Decided, Event, Failed, QueueUpdate
from iaforall.core.types import Usage, UserId

RECORDED = Path(__file__).parent / "recorded"
ANN = UserId("ann")
EVENTS = TypeAdapter(ResponseStreamEvent)
ITEMS = TypeAdapter(ResponseItem)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
PNG = "data:image/png;base64,iVBORw0KGgo="


def body(**fields: Any) -> ResponseBody:
    return ResponseBody.model_validate({"model": "tiny", "input": "Bonjour", **fields})


def chunks(name: str) -> list[Chunk]:
    """Recorded llama.cpp chunk bytes, as the engine hands them on (usage parsed once)."""
    found = []
    for line in (RECORDED / name).read_text().splitlines():
        if not line.startswith("data: {"):
            continue
        data = line[6:].encode()
        counts = json.loads(data).get("usage")
        usage = Usage(counts["prompt_tokens"], counts["completion_tokens"]) if counts else None
        found.append(Chunk(data, usage, usage_only=usage is not None))
    return found


def text_of(recorded: list[Chunk]) -> str:
    return "".join(c.delta.text for c in recorded)


def streamed(events: ResponseEvents, recorded: list[Event]) -> list[dict[str, Any]]:
    """The Responses events for the pipeline's events, as the router sends them."""
    out = events.created()
    for event in recorded:
        out += events.on(event)
    return out + events.completed()


# ---- request -> core ----------------------------------------------------------------------


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    asked = body(instructions="Réponds en français.", temperature=0.2, max_output_tokens=40)
    items = input_items(asked, [])
    chat = chat_request(asked, items, ANN)
    assert chat.messages == (
        {"role": "system", "content": "Réponds en français."},
        {"role": "user", "content": "Bonjour"},
    )
    assert chat.sampling.temperature == 0.2 and chat.sampling.max_tokens == 40
    assert chat.user == ANN and chat.response_format is None and not chat.stream
    assert [i["type"] for i in items] == ["message"] and items[0]["id"].startswith("msg_")
    ITEMS.validate_python(items[0])


def test_empty_instructions_are_kept_to_replace_a_templates_hidden_prompt() -> None:
    chat = chat_request(body(instructions=""), input_items(body(), []), ANN)
    assert chat.messages[0] == {"role": "system", "content": ""}


def test_items_of_a_tool_round_trip_become_chat_messages() -> None:
    asked = body(
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me see.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21°C"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "noon"}],
            },
        ]
    )
    items = input_items(asked, [])
    for item in items:
        ITEMS.validate_python(item)
    assert items[3]["id"] == "fc_1" and items[4]["id"].startswith("fc_")
    assert chat_messages(items) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Let me see.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
    ]


def test_images_go_in_as_chats_image_parts() -> None:
    asked = body(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                    {"type": "input_image", "image_url": "https://example.org/cat.png"},
                ],
            }
        ]
    )
    items = input_items(asked, [])
    ITEMS.validate_python(items[0])
    assert chat_messages(items) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.org/cat.png", "detail": "auto"},
                },
            ],
        }
    ]


def test_tools_tool_choice_and_json_schema_become_the_chat_forms() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    asked = body(
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}},
        stream=True,
    )
    chat = chat_request(asked, input_items(asked, []), ANN)
    assert chat.tools == (
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": WEATHER["parameters"],
                "strict": True,
            },
        },
    )
    assert chat.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert chat.parallel_tool_calls is False and chat.stream
    assert chat.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "count", "schema": schema, "strict": True},
    }
    as_json = body(text={"format": {"type": "json_object"}})
    assert chat_request(as_json, input_items(as_json, []), ANN).response_format == {
        "type": "json_object"
    }
    with pytest.raises(InvalidRequest) as empty:
        chat_request(body(input=[]), [], ANN)
    assert empty.value.param == "input"


def test_an_item_reference_is_found_in_the_chain_only() -> None:
    earlier = [
        {
            "id": "msg_old",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": "Hi"}],
        }
    ]
    asked = body(input=[{"type": "item_reference", "id": "msg_old"}])
    assert input_items(asked, earlier) == earlier
    with pytest.raises(InvalidRequest) as missing:
        input_items(asked, [])
    assert missing.value.param == "input.0.id"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"truncation": "auto"}, "truncation"),
        ({"tools": [{"type": "web_search"}]}, "tools.0"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": 7}}}},
            "text.format.schema",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises((InvalidRequest, ValidationError)) as refused:
        body(**fields)
    error = refused.value
    if isinstance(error, ValidationError):  # raised inside a validator: pydantic wraps it
        error = error.errors()[0]["ctx"]["error"]
    assert isinstance(error, InvalidRequest) and error.param == param


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"type": "reasoning", "summary": []}, "input.0.type"),
        (
            {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]},
            "input.0.content.0",
        ),
        (
            {"role": "user", "content": [{"type": "input_image", "file_id": "f"}]},
            "input.0.content.0",
        ),
        (
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [{"type": "input_image", "image_url": PNG}],
            },
            "input.0.output.0",
        ),
    ],
)
def test_unsupported_items_and_parts_are_refused_where_they_are(
    item: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        input_items(body(input=[item]), [])
    assert refused.value.param == param and "not supported" in refused.value.message


def test_fields_that_change_nothing_are_accepted() -> None:
    asked = body(
        include=["message.output_text.logprobs"],
        service_tier="auto",
        user="u",
        store=False,
        metadata={"k": "v"},
        background=False,
        reasoning=None,
        truncation="disabled",
    )
    assert asked.store is False and asked.metadata == {"k": "v"}


# ---- whole answers -> Response ------------------------------------------------------------


def test_a_whole_answer_is_a_response_object() -> None:
    result = json.loads((RECORDED / "text.json").read_text())
    asked = body(instructions="Be nice.", max_output_tokens=8, metadata={"a": "b"})
    response = whole_response(Shell.new(asked, "smollm2:135m"), result)
    parsed = Response.model_validate(response)
    assert parsed.output_text == result["choices"][0]["message"]["content"]
    assert parsed.id.startswith("resp_") and parsed.object == "response"
    # llama.cpp stopped at max_tokens: OpenAI calls that incomplete
    assert parsed.status == "incomplete" and parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == "max_output_tokens"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens, parsed.usage.total_tokens) == (
        16,
        8,
        24,
    )
    assert parsed.usage.input_tokens_details.cached_tokens == 15
    assert parsed.instructions == "Be nice." and parsed.metadata == {"a": "b"}


def test_a_whole_tool_call_is_a_function_call_item() -> None:
    result = json.loads((RECORDED / "tool.json").read_text())
    response = whole_response(Shell.new(body(tools=[WEATHER]), "qwen"), result)
    parsed = Response.model_validate(response)
    assert parsed.status == "completed" and len(parsed.output) == 1
    call = parsed.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id == result["choices"][0]["message"]["tool_calls"][0]["id"]
    assert parsed.tools[0].type == "function" and parsed.tools[0].name == "get_weather"


# ---- streamed chunks -> events ------------------------------------------------------------

TEXT_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def _checked(events: list[dict[str, Any]]) -> list[Any]:
    """Each event valid for the SDK, numbered 0, 1, 2...; and the SDK's own stream helper
    (what `client.responses.stream` runs) accepts them all."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    typed = [EVENTS.validate_python(e) for e in events]
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in typed:
        state.handle_event(event)
    return typed


def test_a_streamed_text_answer_has_openais_events_in_order() -> None:
    recorded = chunks("text.sse")
    events = ResponseEvents(Shell.new(body(stream=True, max_output_tokens=8), "smollm2:135m"))
    out = streamed(events, recorded)
    _checked(out)
    kinds = [e["type"] for e in out if e["type"] != "response.output_text.delta"]
    assert kinds == [*TEXT_ORDER, "response.incomplete"]
    deltas = [e["delta"] for e in out if e["type"] == "response.output_text.delta"]
    text = text_of(recorded)
    assert "".join(deltas) == text and len(deltas) == 8
    final = Response.model_validate(out[-1]["response"])
    assert final.output_text == text and final.usage is not None
    assert final.usage.output_tokens == 8 and events.final == out[-1]["response"]


def test_a_streamed_tool_call_has_the_function_call_events() -> None:
    events = ResponseEvents(Shell.new(body(tools=[WEATHER], stream=True), "qwen"))
    out = streamed(events, chunks("tool.sse"))
    _checked(out)
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    call = out[-1]["response"]["output"][0]
    assert call["call_id"] == "call_e9beb47b287e66e70efb565a" and call["status"] == "completed"
    assert json.loads(out[4]["arguments"]) == {"city": "Paris"} and out[4]["name"] == "get_weather"
    assert out[-1]["response"]["usage"]["input_tokens"] == 152


def test_text_then_two_calls_in_pieces_close_each_item_before_the_next() -> None:
    events = ResponseEvents(Shell.new(body(stream=True), "qwen"))
    out = streamed(events, chunks("tool_pieces.sse"))
    typed = _checked(out)
    assert [e["type"] for e in out] == [
        *TEXT_ORDER[:3],
        "response.content_part.added",
        "response.output_text.delta",
        *TEXT_ORDER[4:],
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = typed[-1].response
    assert [o.type for o in final.output] == ["message", "function_call", "function_call"]
    assert final.output_text == "Let me check."
    assert json.loads(final.output[1].arguments) == {"city": "Paris"}
    assert final.output[2].name == "get_time"
    assert [e["output_index"] for e in out if e["type"] == "response.output_item.added"] == [
        0,
        1,
        2,
    ]
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 100


def test_an_empty_answer_is_one_empty_message() -> None:
    events = ResponseEvents(Shell.new(body(stream=True), "m"))
    out = events.created() + events.completed()
    _checked(out)
    assert [e["type"] for e in out] == [*TEXT_ORDER, "response.completed"]
    assert Response.model_validate(out[-1]["response"]).output_text == ""


def test_a_request_in_line_is_queued_then_in_progress() -> None:
    events = ResponseEvents(Shell.new(body(stream=True), "m"), extra={"decisions": []})
    out = events.created(2, 3.5) + events.on(QueueUpdate(2, 3.5))
    out += events.on(QueueUpdate(1, 1.2)) + events.on(QueueUpdate(0, 0))
    out += events.text("Hi") + events.completed()
    typed = _checked(out)
    assert [e["type"] for e in out[:4]] == [
        "response.created",
        "response.queued",
        "response.queued",
        "response.in_progress",
    ]
    assert out[0]["response"]["status"] == "queued"
    assert out[2]["response"]["iaforall"]["queue"] == {"position": 1, "wait_s": 1.2}
    assert typed[-1].response.output_text == "Hi"
    assert out[-1]["response"]["iaforall"] == {"decisions": []}


def test_the_output_rules_decisions_ride_on_the_next_text_and_the_response() -> None:
    recorded = chunks("text.sse")
    said = Decided("output", ({"rule": "no-shouting", "action": "warn"},))
    events = ResponseEvents(
        Shell.new(body(stream=True), "m"), extra={"decisions": [{"rule": "in", "action": "log"}]}
    )
    out = streamed(events, [*recorded[:-3], said, *recorded[-3:]])
    _checked(out)
    deltas = [e for e in out if e["type"] == "response.output_text.delta"]
    assert deltas[-1]["iaforall"] == {"decisions": [{"rule": "no-shouting", "action": "warn"}]}
    assert all("iaforall" not in e for e in deltas[:-1])
    assert out[-1]["response"]["iaforall"]["decisions"] == [
        {"rule": "in", "action": "log"},
        {"rule": "no-shouting", "action": "warn"},
    ]


def test_a_failure_mid_way_is_an_error_then_a_failed_response() -> None:
    events = ResponseEvents(Shell.new(body(stream=True), "m"))
    out = events.created() + events.text("Hel")
    out += events.on(Failed(RequestTimeout("The answer took too long.")))
    _checked(out)
    assert [e["type"] for e in out[-2:]] == ["error", "response.failed"]
    assert out[-2]["code"] == "timeout" and out[-2]["message"] == "The answer took too long."
    failed = out[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"


def test_an_event_is_framed_with_its_type_as_the_sse_event_name() -> None:
    frame = sse_frame({"type": "response.output_text.delta", "delta": "é"})
    head, data = frame.decode().removesuffix("\n\n").split("\n")
    assert head == "event: response.output_text.delta"
    assert data == 'data: {"type":"response.output_text.delta","delta":"é"}'
