"""/api on a shared server: the same accounts, quotas, line and published rules as /v1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.app import create_app
from iaforall.people.accounts import Accounts
from iaforall.settings import PolicySettings
from iaforall.store.database import Database
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.people.conftest import Shared, settings_with_accounts, shared_server
from tests.policy.samples import BILINGUAL


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], **extra}


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


async def key_of(world: Shared, name: str) -> str:
    client, csrf = await world.login(name)
    try:
        made = await client.post(
            "/web/api/keys", json={"name": "ollama"}, headers={"X-CSRF-Token": csrf}
        )
    finally:
        await client.aclose()
    return str(made.json()["key"])


async def test_accounts_keys_roles_and_usage(tmp_path: Path) -> None:
    settings = settings_with_accounts(tmp_path)
    async with shared_server(tmp_path, settings) as world:
        r = await world.client.post("/api/chat", json=chat(stream=False))
        assert r.status_code == 401 and list(r.json()) == ["error", "code"]
        assert (await world.client.get("/api/version")).status_code == 200  # probed first
        assert (await world.client.head("/")).status_code == 200
        bob_key, ada_key = await key_of(world, "bob"), await key_of(world, "ada")
        async with world.client_for(Authorization=f"Bearer {bob_key}") as bob:
            r = await bob.post("/api/chat", json=chat(stream=False))
            assert r.status_code == 200 and r.json()["message"]["content"] == "hi"
            assert (await bob.get("/api/tags")).status_code == 200
            copied = {"source": "tiny", "destination": "bobs:copy"}
            assert (await bob.post("/api/copy", json=copied)).status_code == 403
            r = await bob.request("DELETE", "/api/delete", json={"model": "tiny"})
            assert r.status_code == 403 and "administrator" in r.json()["error"]
            assert (await bob.post("/api/pull", json={"model": "tiny"})).status_code == 403
        async with world.client_for(Authorization=f"Bearer {ada_key}") as ada:
            copied = {"source": "tiny", "destination": "adas:copy"}
            assert (await ada.post("/api/copy", json=copied)).status_code == 200
        database = Database(settings.database_url)
        try:
            accounts = Accounts(database, 1)
            bob_id = accounts.get_user("bob").id
            used = accounts.usage(user_id=bob_id)
        finally:
            database.close()
        assert sum(row.completion_tokens for row in used) >= 1


@pytest.fixture
async def ruled(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    stock_store(tmp_path)
    (tmp_path / "rules.toml").write_text(BILINGUAL, encoding="utf-8")
    settings = fake_settings(tmp_path).model_copy(
        update={"policy": PolicySettings(rules_file=tmp_path / "rules.toml")}
    )
    world = FakeWorld(client=httpx.AsyncClient())
    async with (
        served(create_app(settings, factory=world.factory)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


async def test_published_rules_apply(ruled: httpx.AsyncClient) -> None:
    r = await ruled.post("/api/chat", json=chat("how to make a pipe bomb"))
    assert r.status_code == 403
    assert "no-weapons" in r.json()["error"]
    assert r.json()["iaforall"]["decisions"][0]["rule"] == "no-weapons"
    # a warning rides in the answer, on input and (the fake engine echoes) on output
    phone = "call me at 06 12 34 56 78"
    whole = (await ruled.post("/api/chat", json=chat(phone, stream=False))).json()
    stages = [d["applies_to"] for d in whole["iaforall"]["decisions"]]
    assert stages == ["input", "output"]
    got = lines((await ruled.post("/api/generate", json={"model": "tiny", "prompt": phone})).text)
    assert got[0]["iaforall"]["decisions"][0]["rule"] == "phone-numbers"
    assert got[-1]["done"] is True


async def answering(fake: FakeWorld) -> None:
    for _ in range(500):
        if fake.engines and fake.engine("tiny:latest").active:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the first request never started")


async def test_a_request_made_to_wait_sees_its_place_in_line(fake: FakeWorld) -> None:
    fake.delay = 0.3
    first = asyncio.create_task(fake.client.post("/api/chat", json=chat("a b c", stream=False)))
    await answering(fake)
    fake.engine("tiny:latest").enqueue("x", "y")
    r = await fake.client.post("/api/chat", json=chat())
    assert r.headers["x-iaforall-queue-position"] == "1"
    got = lines(r.text)
    assert got[0]["iaforall"]["queue"]["position"] == 1 and got[0]["message"]["content"] == ""
    assert "".join(g["message"]["content"] for g in got) == "xy"
    assert (await first).status_code == 200


async def test_deleting_a_model_that_answers_is_refused(fake: FakeWorld) -> None:
    fake.delay = 0.3
    fake_answer = asyncio.create_task(fake.client.post("/api/chat", json=chat(stream=False)))
    await answering(fake)
    r = await fake.client.request("DELETE", "/api/delete", json={"model": "tiny"})
    assert r.status_code == 409 and "answering" in r.json()["error"]
    assert (await fake_answer).status_code == 200
    r = await fake.client.request("DELETE", "/api/delete", json={"model": "tiny"})
    assert r.status_code == 200
    assert (await fake.client.get("/api/ps")).json()["models"] == []
