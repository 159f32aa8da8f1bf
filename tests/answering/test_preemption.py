"""Preemption on the real model (smollm2:135m, one slot, accounts on, two people): bob's answer
is paused when ada asks, and resumed when she is served. Bob sees only a delay: at temperature
0 his answer is token for token the one he gets alone, with the same usage, in every dialect,
streamed or not; a streamed answer says it was paused in its place-in-line messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.app import create_app
from iaforall.scheduling.loop import Scheduler
from iaforall.settings import (
    EngineSettings,
    PeopleSettings,
    SchedulingSettings,
    ServerSettings,
    Settings,
    StoreSettings,
)
from tests.conftest import served
from tests.people.conftest import PASSWORD
from tests.real_server import SMOL

QUESTION = "Count from 1 to 100, one number per line."
TOKENS = 48  # long enough to be paused after its first quantum (16 tokens), short to test


@dataclass
class Answer:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    paused_seen: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass
class World:
    client: httpx.AsyncClient
    scheduler: Scheduler
    bob: dict[str, str]
    ada: dict[str, str]
    web: httpx.AsyncClient  # bob's browser session
    csrf: str


@pytest.fixture
async def world(model_home: Path, tmp_path: Path) -> AsyncIterator[World]:
    for part in ("models", "manifests"):  # the session's store, a database of our own
        (tmp_path / part).symlink_to(model_home / part)
    settings = Settings(
        store=StoreSettings(home=tmp_path, install_missing=False),
        server=ServerSettings(model=SMOL, preload=True),
        engine=EngineSettings(parallel=1, context_length=2048, threads=2, keep_alive=-1),
        scheduling=SchedulingSettings(max_queue=8, queue_timeout=600, preempt=True, cpu_cores=2),
        people=PeopleSettings(auth=True),
    )
    app = create_app(settings)
    async with served(app) as url:
        services = app.state.services
        services.accounts.create_user("ada", PASSWORD, "admin")
        services.accounts.create_user("bob", PASSWORD, "member")
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            keys = {}
            sessions = {}
            for name in ("ada", "bob"):
                browser = httpx.AsyncClient(base_url=url, timeout=600, headers={"Origin": url})
                login = await browser.post(
                    "/web/api/session", json={"name": name, "password": PASSWORD}
                )
                csrf = str(login.json()["csrf_token"])
                key = await browser.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})
                keys[name] = {"Authorization": f"Bearer {key.json()['key']}"}
                sessions[name] = (browser, csrf)
            yield World(
                client,
                services.scheduler,
                keys["bob"],
                keys["ada"],
                sessions["bob"][0],
                sessions["bob"][1],
            )
            for browser, _ in sessions.values():
                await browser.aclose()


def _sse_data(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line[6:].startswith("{")
    ]


def _paused(text: str) -> bool:
    return " paused" in text or '"paused": true' in text or '"paused":true' in text


async def openai(w: World, stream: bool) -> Answer:
    body = {
        "model": SMOL,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": TOKENS,
        "temperature": 0,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    r = await w.client.post("/v1/chat/completions", json=body, headers=w.bob)
    assert r.status_code == 200, r.text
    if not stream:
        data = r.json()
        usage = data["usage"]
        text = data["choices"][0]["message"]["content"]
        return Answer(text, usage["prompt_tokens"], usage["completion_tokens"])
    answer = Answer(paused_seen=_paused(r.text))
    for chunk in _sse_data(r.text):
        for choice in chunk["choices"]:
            answer.text += choice["delta"].get("content") or ""
        if chunk.get("usage"):
            answer.prompt_tokens = chunk["usage"]["prompt_tokens"]
            answer.completion_tokens = chunk["usage"]["completion_tokens"]
    return answer


async def ollama(w: World, stream: bool) -> Answer:
    body = {
        "model": SMOL,
        "messages": [{"role": "user", "content": QUESTION}],
        "options": {"num_predict": TOKENS, "temperature": 0},
        "stream": stream,
    }
    r = await w.client.post("/api/chat", json=body, headers=w.bob)
    assert r.status_code == 200, r.text
    answer = Answer(paused_seen=_paused(r.text))
    for line in r.text.splitlines():
        item = json.loads(line)
        answer.text += item.get("message", {}).get("content", "")
        if item.get("done"):
            answer.prompt_tokens = item["prompt_eval_count"]
            answer.completion_tokens = item["eval_count"]
    return answer


async def responses(w: World, stream: bool) -> Answer:
    body = {
        "model": SMOL,
        "input": QUESTION,
        "max_output_tokens": TOKENS,
        "temperature": 0,
        "stream": stream,
    }
    r = await w.client.post("/v1/responses", json=body, headers=w.bob)
    assert r.status_code == 200, r.text
    if not stream:
        data = r.json()
        text = data["output"][0]["content"][0]["text"]
        usage = data["usage"]
        return Answer(text, usage["input_tokens"], usage["output_tokens"])
    answer = Answer(paused_seen=_paused(r.text))
    for event in _sse_data(r.text):
        if event["type"] == "response.output_text.delta":
            answer.text += event["delta"]
        elif event["type"] in ("response.completed", "response.incomplete"):  # max tokens
            usage = event["response"]["usage"]
            answer.prompt_tokens = usage["input_tokens"]
            answer.completion_tokens = usage["output_tokens"]
    return answer


async def anthropic(w: World, stream: bool) -> Answer:
    body = {
        "model": SMOL,
        "max_tokens": TOKENS,
        "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
    }
    r = await w.client.post("/v1/messages", json=body, headers=w.bob)
    assert r.status_code == 200, r.text
    if not stream:
        data = r.json()
        usage = data["usage"]
        return Answer(data["content"][0]["text"], usage["input_tokens"], usage["output_tokens"])
    answer = Answer(paused_seen=_paused(r.text))
    for event in _sse_data(r.text):
        if event["type"] == "message_start":
            answer.prompt_tokens = event["message"]["usage"]["input_tokens"]
        elif event["type"] == "content_block_delta":
            answer.text += event["delta"].get("text", "")
        elif event["type"] == "message_delta":
            answer.completion_tokens = event["usage"]["output_tokens"]
    return answer


async def web(w: World, stream: bool) -> Answer:
    """The web app's reply (always streamed); usage as the conversation stored it."""
    headers = {"X-CSRF-Token": w.csrf}
    made = await w.web.post(
        "/web/api/conversations",
        json={"model": SMOL, "settings": {"temperature": 0, "max_tokens": TOKENS}},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    conversation = made.json()["id"]
    r = await w.web.post(
        f"/web/api/conversations/{conversation}/reply",
        json={"content": QUESTION},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    answer = Answer(paused_seen=_paused(r.text))
    for chunk in _sse_data(r.text):
        for choice in chunk.get("choices") or []:
            answer.text += (choice.get("delta") or {}).get("content") or ""
    stored = (await w.web.get(f"/web/api/conversations/{conversation}")).json()
    last = stored["messages"][-1]
    assert last["content"] == answer.text
    answer.prompt_tokens = last["usage"]["prompt_tokens"]
    answer.completion_tokens = last["usage"]["completion_tokens"]
    return answer


DIALECTS: dict[str, Callable[[World, bool], Awaitable[Answer]]] = {
    "openai": openai,
    "ollama": ollama,
    "responses": responses,
    "anthropic": anthropic,
    "web": web,
}
CASES = [
    pytest.param(name, stream, id=f"{name}-{'stream' if stream else 'whole'}")
    for name in DIALECTS
    for stream in (True, False)
    if stream or name != "web"
]


async def _bob_far_enough(scheduler: Scheduler, tokens: int) -> None:
    """(Only bob's answer runs.)"""
    for _ in range(60_000):
        if any(p.position == 0 and p.tokens >= tokens for p in scheduler.snapshot()):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("bob's answer never got far enough")


@pytest.mark.parametrize(("dialect", "stream"), CASES)
async def test_a_paused_answer_is_the_same_answer_later(
    world: World, dialect: str, stream: bool
) -> None:
    ask = DIALECTS[dialect]
    alone = await ask(world, stream)
    assert alone.completion_tokens == TOKENS and alone.text  # long enough to pause midway
    pauses = world.scheduler.pauses

    bob = asyncio.create_task(ask(world, stream))
    await _bob_far_enough(world.scheduler, 24)
    ada = await world.client.post(
        "/v1/chat/completions",
        json={
            "model": SMOL,
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 4,
            "temperature": 0,
        },
        headers=world.ada,
    )
    assert ada.status_code == 200, ada.text
    assert not bob.done()  # ada was served while bob's answer waited
    paused = await asyncio.wait_for(bob, 120)

    assert world.scheduler.pauses == pauses + 1
    assert paused.text == alone.text
    assert (paused.prompt_tokens, paused.completion_tokens) == (
        alone.prompt_tokens,
        alone.completion_tokens,
    )
    if stream:
        assert paused.paused_seen and not alone.paused_seen
