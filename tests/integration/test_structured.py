"""Structured output and tool calls, where answer quality matters: the real qwen2.5-coder:0.5b."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.real_server import QWEN, RealServer

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "city": {"type": "string", "enum": ["Paris", "Lyon", "Marseille"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city name"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def client(server: RealServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def test_json_schema_output_parses_and_matches(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "Invente une personne qui habite en France."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
        max_tokens=100,
        temperature=0,
    )
    person = json.loads(answer.choices[0].message.content or "")
    jsonschema.validate(person, PERSON)


def test_json_object_output_parses(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "Give the colours of the French flag as JSON."}],
        response_format={"type": "json_object"},
        max_tokens=80,
        temperature=0,
    )
    assert isinstance(json.loads(answer.choices[0].message.content or ""), dict | list)


def test_tool_call_round_trip(client: openai.OpenAI) -> None:
    question = {"role": "user", "content": "What is the weather in Paris right now?"}
    answer = client.chat.completions.create(
        model=QWEN,
        messages=[question],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=100,
        temperature=0,
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    arguments = json.loads(calls[0].function.arguments)
    assert "paris" in arguments["city"].lower()
    # The tool's result goes back and the model answers from it.
    follow_up = client.chat.completions.create(
        model=QWEN,
        messages=[
            question,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {
                "role": "tool",
                "tool_call_id": calls[0].id,
                "content": '{"temp_c": 21, "sky": "sunny"}',
            },
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_tokens=60,
        temperature=0,
    )
    assert "21" in (follow_up.choices[0].message.content or "")


def test_streamed_answer_in_french(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "Quelle est la capitale de la France ?"}],
        max_tokens=30,
        temperature=0,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "Paris" in text


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "What is the weather in Lyon?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert calls and calls[0].function and calls[0].function.name == "get_weather"
    assert "lyon" in json.loads(calls[0].function.arguments or "{}")["city"].lower()
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
