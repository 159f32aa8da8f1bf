"""Requests that used to pass but must be refused, each in its API's own error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import FakeWorld
from tests.people.conftest import PASSWORD, Shared, settings_with_accounts, shared_server

WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}
HI = [{"role": "user", "content": "hi"}]


async def test_tool_choice_must_name_a_given_tool(fake: FakeWorld) -> None:
    async def chat(**extra: object) -> tuple[int, dict[str, object]]:
        body = {"model": "tiny", "messages": HI, **extra}
        response = await fake.client.post("/v1/chat/completions", json=body)
        return response.status_code, response.json()

    status, body = await chat(
        tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "time"}}
    )
    assert status == 400 and body["error"]["param"] == "tool_choice", body  # type: ignore[index]
    assert "'time'" in body["error"]["message"]  # type: ignore[index]
    status, body = await chat(tool_choice="required")
    assert status == 400 and body["error"]["param"] == "tool_choice"  # type: ignore[index]
    status, _ = await chat(tool_choice={"type": "function", "function": {}})
    assert status == 400
    named = {"type": "function", "function": {"name": "weather"}}
    status, _ = await chat(tools=[WEATHER], tool_choice=named)
    assert status == 200
    assert fake.engine("tiny:latest").requests[-1].tool_choice == named


async def test_ollama_options_of_the_wrong_type_are_refused(fake: FakeWorld) -> None:
    body = {"model": "tiny", "messages": HI, "stream": False}
    wrong = await fake.client.post("/api/chat", json={**body, "options": {"num_ctx": "big"}})
    assert wrong.status_code == 400
    assert "num_ctx" in wrong.json()["error"]  # Ollama's shape: the message itself
    wrong = await fake.client.post("/api/chat", json={**body, "options": {"use_mmap": 1}})
    assert wrong.status_code == 400
    right = await fake.client.post("/api/chat", json={**body, "options": {"num_ctx": 4096}})
    assert right.status_code == 200
    assert right.headers["X-IAForAll-Ignored-Options"] == "num_ctx"


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[Shared]:
    async with shared_server(tmp_path, settings_with_accounts(tmp_path)) as world:
        yield world


async def test_only_an_admin_pins_or_unloads_a_shared_model(accounts: Shared) -> None:
    bearer = {}
    for name in ("ada", "bob"):
        client, csrf = await accounts.login(name, PASSWORD)
        made = await client.post("/web/api/keys", json={}, headers={"X-CSRF-Token": csrf})
        await client.aclose()
        bearer[name] = {"Authorization": f"Bearer {made.json()['key']}"}

    async def load(who: str, keep_alive: object, path: str = "/api/generate") -> int:
        body = {"model": "tiny", "keep_alive": keep_alive}
        if path.startswith("/v1"):
            body = {"model": "tiny", "messages": HI, "iaforall": {"keep_alive": keep_alive}}
        response = await accounts.client.post(path, json=body, headers=bearer[who])
        return response.status_code

    for keep_alive in (-1, "-1m", "1h", 0, "0s"):
        assert await load("bob", keep_alive) == 403, keep_alive
    assert await load("bob", -1, "/v1/chat/completions") == 403
    assert await load("bob", "5m") == 200  # within the server's default (300 s)
    assert await load("bob", None) == 200
    assert await load("ada", -1) == 200
    listed = (await accounts.client.get("/api/ps", headers=bearer["ada"])).json()["models"]
    assert listed[0]["expires_at"].startswith("2318")  # pinned by the admin
