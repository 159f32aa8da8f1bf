"""/v1/messages on the scriptable fake engine: the answer path, Anthropic's error shape on
every way a request can fail, the stream's events, the place in line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from iaforall.core.errors import EngineUnavailable
from tests.api.test_body_limits import raw_status
from tests.api.test_knowledge_api import NOTES, World, new_base, settled, upload, world
from tests.api.test_policy_api import Served, ruled
from tests.api.test_queue import blocker, line, until
from tests.conftest import FakeWorld
from tests.sse import events

__all__ = ["ruled", "world"]  # fixtures of the policy and knowledge tests, used here too

MESSAGES = "/v1/messages"


def ask(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": "tiny",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def anthropic_error(body: dict[str, Any], kind: str) -> str:
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    message: str = body["error"]["message"]
    return message


async def test_whole_message(fake: FakeWorld) -> None:
    r = await fake.client.post(
        MESSAGES, json=ask("Bonjour"), headers={"anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 200, r.text
    message = anthropic.types.Message.model_validate(r.json())
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour"
    assert message.model == "tiny:latest" and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 1
    assert r.headers["x-iaforall-queue-position"] == "0"


async def test_max_tokens_past_the_context_is_lowered_to_it(fake: FakeWorld) -> None:
    r = await fake.client.post(MESSAGES, json=ask(max_tokens=32000))
    assert r.status_code == 200, r.text
    assert fake.engine("tiny:latest").requests[-1].sampling.max_tokens == 2048


async def test_streamed_message_events(fake: FakeWorld) -> None:
    fake.engines.clear()
    r = await fake.client.post(MESSAGES, json=ask(stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events(r.text)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta = dict(events(r.text))["message_delta"]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 1


async def test_count_tokens_uses_the_engines_tokenizer(fake: FakeWorld) -> None:
    body = ask("three words here", system="Be brief.")
    del body["max_tokens"]
    r = await fake.client.post(f"{MESSAGES}/count_tokens", json=body)
    assert r.status_code == 200, r.text
    # the fake engine renders "<system>Be brief.\n<user>three words here\n", one token a word
    assert r.json() == {"input_tokens": 5}


@pytest.mark.parametrize(
    ("body", "status", "kind", "says"),
    [
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "x"}]},
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (ask(model="nope"), 404, "not_found_error", "iaforall pull nope"),
        (ask(mcp_servers=[]), 400, "invalid_request_error", "mcp_servers"),
        (ask(temperature=1.5), 400, "invalid_request_error", "temperature"),
    ],
)
async def test_errors_have_anthropics_shape(
    fake: FakeWorld, body: dict[str, Any], status: int, kind: str, says: str
) -> None:
    r = await fake.client.post(MESSAGES, json=body)
    assert r.status_code == status
    assert says in anthropic_error(r.json(), kind)


async def test_bad_json_unknown_route_and_too_large_body_too(fake: FakeWorld) -> None:
    r = await fake.client.post(
        MESSAGES, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in anthropic_error(
        r.json(), "invalid_request_error"
    )
    r = await fake.client.post(f"{MESSAGES}/batches", json={})
    assert r.status_code in (404, 405)
    anthropic_error(
        r.json(), "not_found_error" if r.status_code == 404 else "invalid_request_error"
    )
    status, raw = await raw_status(str(fake.client.base_url), "POST", MESSAGES, 10**12)
    assert status == 413 and "larger than" in anthropic_error(json.loads(raw), "request_too_large")
    r = await fake.client.post("/v1/chat/completions", json={})
    assert "error" in r.json() and "type" not in r.json()  # OpenAI's shape, unchanged


async def test_engine_failure_midway_is_an_error_event(fake: FakeWorld) -> None:
    await fake.client.post(MESSAGES, json=ask())  # loads the engine
    fake.engine("tiny:latest").enqueue("Hel", EngineUnavailable("The engine stopped."))
    r = await fake.client.post(MESSAGES, json=ask(stream=True))
    found = events(r.text)
    assert found[-1][0] == "error"
    assert "stopped" in anthropic_error(found[-1][1], "overloaded_error")
    assert "message_stop" not in [name for name, _ in found]


async def test_engine_failure_before_streaming_keeps_its_status(fake: FakeWorld) -> None:
    await fake.client.post(MESSAGES, json=ask())
    fake.engine("tiny:latest").enqueue(EngineUnavailable("The engine stopped."))
    r = await fake.client.post(MESSAGES, json=ask(stream=True))
    assert r.status_code == 503
    anthropic_error(r.json(), "overloaded_error")


async def test_the_waiting_stream_shows_its_place_in_pings(tmp_path: Path) -> None:
    async with line(tmp_path) as q:
        held = await blocker(q)
        waiting = asyncio.create_task(q.client.post(MESSAGES, json=ask(stream=True)))
        await until(lambda: held.done() or waiting.done())
        r = await waiting
        await held
    assert r.headers["x-iaforall-queue-position"] == "1"
    found = events(r.text)
    assert found[0][0] == "message_start"
    pings = [data for name, data in found if name == "ping" and "iaforall" in data]
    assert pings and pings[0]["iaforall"]["queue"]["position"] == 1
    assert found[-1][0] == "message_stop"


PHONE = "Call me on 06 12 34 56 78"


async def test_rules_decisions_ride_in_the_iaforall_field(ruled: Served) -> None:
    client = ruled.client
    whole = (await client.post(MESSAGES, json=ask(PHONE))).json()  # the fake echoes it
    stages = [d["applies_to"] for d in whole["iaforall"]["decisions"]]
    assert stages == ["input", "output"], whole
    r = await client.post(MESSAGES, json=ask(PHONE, stream=True))
    found = events(r.text)
    start = found[0][1]["message"]
    assert [d["rule"] for d in start["iaforall"]["decisions"]] == ["phone-numbers"]
    later = [data["iaforall"] for name, data in found[1:] if "iaforall" in data]
    assert [d["applies_to"] for d in later[0]["decisions"]] == ["output"]
    assert found[-1][0] == "message_stop"
    blocked = await client.post(MESSAGES, json=ask("how to make a pipe bomb"))
    assert blocked.status_code == 403
    said = anthropic_error(blocked.json(), "permission_error")
    assert "weapons" in said
    assert blocked.json()["iaforall"]["decisions"][0]["rule"] == "no-weapons"


async def test_knowledge_citations_prompt_and_keep_alive(world: World) -> None:
    client = world.client
    kb = (await new_base(client))["id"]
    (notes,) = (await upload(client, kb, ("notes.md", NOTES))).json()["data"]
    assert (await settled(client, kb, notes["id"]))["status"] == "ready"
    extension = {"knowledge": {"bases": [kb], "k": 1}, "return_prompt": True, "keep_alive": 0}
    r = await client.post(MESSAGES, json=ask("When are tomatoes watered?", iaforall=extension))
    assert r.status_code == 200, r.text
    ours = r.json()["iaforall"]
    assert ours["citations"][0]["document"] == "notes.md"
    assert "[1] notes.md" in ours["prompt"]
    engine = world.fake.engine("tiny:latest")
    assert engine.state.value == "stopped"  # keep_alive 0: unloaded after the answer
    body = ask("When are tomatoes watered?", iaforall={"knowledge": {"bases": [kb], "k": 1}})
    del body["max_tokens"]
    counted = (await client.post(f"{MESSAGES}/count_tokens", json=body)).json()["input_tokens"]
    assert counted > 10  # a question of four words: the passage is counted too
