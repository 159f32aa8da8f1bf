"""The official `anthropic` SDK, unchanged, against the real server (accounts on, a real key)
and the real models: smollm2:135m for text, qwen2.5-coder:0.5b for tools."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from iaforall.people.accounts import Accounts
from iaforall.store.database import Database
from tests.real_server import QWEN, SMOL, RealServer, start_server, stop_server

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city name"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def keyed(
    model_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RealServer, str]]:
    """A server with accounts on, and the API key of a member made in its database first."""
    home = tmp_path_factory.mktemp("anthropic")
    url = f"sqlite:///{home / 'people.db'}"
    database = Database(url)
    database.upgrade()
    accounts = Accounts(database, 24)
    accounts.create_user("ann", "correct horse battery", "member")
    _, key = accounts.create_key("ann", "sdk")
    database.close()
    real = start_server(
        model_home,
        home / "server.log",
        IAFORALL_AUTH="true",
        IAFORALL_DATABASE_URL=url,
        IAFORALL_PARALLEL="2",
    )
    yield real, key
    stop_server(real)


@pytest.fixture
def client(keyed: tuple[RealServer, str]) -> anthropic.Anthropic:
    """The SDK as its users write it: the key goes in `x-api-key`."""
    server, key = keyed
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def test_create_answers_a_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=SMOL, max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == SMOL
    assert message.content[0].type == "text" and message.content[0].text.strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 16


def test_bearer_key_and_system_prompt(keyed: tuple[RealServer, str]) -> None:
    server, key = keyed
    bearer = anthropic.Anthropic(base_url=server.url, auth_token=key, max_retries=0)
    message = bearer.messages.create(
        model=SMOL,
        max_tokens=8,
        system=[{"type": "text", "text": "You answer in French."}],
        messages=HELLO,  # type: ignore[arg-type]
        extra_body={"temperature": 0, "top_k": 1},
    )
    assert message.content[0].type == "text"


def test_stream_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=SMOL, max_tokens=16, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip()
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_count_tokens_is_the_prompt_the_model_is_given(client: anthropic.Anthropic) -> None:
    system = "You are terse."
    counted = client.messages.count_tokens(model=SMOL, system=system, messages=HELLO)  # type: ignore[arg-type]
    answered = client.messages.create(model=SMOL, max_tokens=4, system=system, messages=HELLO)  # type: ignore[arg-type]
    assert counted.input_tokens == answered.usage.input_tokens


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=SMOL,
        max_tokens=40,
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        stop_sequences=["5"],
        extra_body={"temperature": 0},
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "5"
    assert message.content[0].type == "text" and "5" not in message.content[0].text


def test_tool_round_trip(client: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "What is the weather in Paris right now?"}
    first = client.messages.create(
        model=QWEN,
        max_tokens=40,
        messages=[question],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        extra_body={"temperature": 0},
    )
    assert first.stop_reason == "tool_use"
    counted = client.messages.count_tokens(
        model=QWEN,
        messages=[question],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert counted.input_tokens == first.usage.input_tokens  # the tools are counted too
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and "paris" in str(call.input["city"]).lower()  # type: ignore[index]
    result = {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": '{"temp_c": 21, "sky": "sunny"}',
    }
    second = client.messages.create(
        model=QWEN,
        max_tokens=40,
        messages=[question, first.to_param(), {"role": "user", "content": [result]}],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
        extra_body={"temperature": 0},
    )
    assert second.stop_reason in ("end_turn", "max_tokens")
    assert second.content[0].type == "text" and "21" in second.content[0].text


def test_streamed_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=QWEN,
        max_tokens=30,
        messages=[{"role": "user", "content": "What is the weather in Lyon?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        extra_body={"temperature": 0},
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = next(block for block in final.content if block.type == "tool_use")
    assert call.name == "get_weather" and "lyon" in str(call.input["city"]).lower()  # type: ignore[index]


def test_errors_are_the_sdks_typed_exceptions(keyed: tuple[RealServer, str]) -> None:
    server, key = keyed
    good = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as missing:
        good.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "iaforall pull no-such-model" in missing.value.message
    with pytest.raises(anthropic.BadRequestError) as invalid:
        good.messages.create(model=SMOL, max_tokens=0, messages=HELLO)  # type: ignore[arg-type]
    assert invalid.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    bad = anthropic.Anthropic(base_url=server.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as refused:
        bad.messages.create(model=SMOL, max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.count_tokens(model=SMOL, messages=HELLO)  # type: ignore[arg-type]


def test_anthropic_version_header_and_queue_headers(keyed: tuple[RealServer, str]) -> None:
    server, key = keyed
    response = httpx.post(
        f"{server.url}/v1/messages",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={"model": SMOL, "max_tokens": 4, "messages": HELLO},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-IAForAll-Queue-Position"] == "0"
    assert response.json()["type"] == "message"
