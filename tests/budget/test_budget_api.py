"""The memory budget through the Ollama API on the fake engine: /api/ps, keep_alive, eviction,
busy models kept, a model too large. Each fake model is budgeted at about 64 MiB (its tiny
file plus the compute allowance), so a 150 MiB budget holds two of them, not three."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaforall.app import create_app
from iaforall.services import Services
from iaforall.settings import EngineSettings
from tests.conftest import FakeWorld, fake_settings, served, stock_store
from tests.models.gguf_files import write_gguf

World = tuple[FakeWorld, Services]


@asynccontextmanager
async def budget_world(home: Path, budget_mb: int, **scheduling: float) -> AsyncIterator[World]:
    store = stock_store(home)  # tiny, other
    store.add_local(write_gguf(home / "src" / "third.gguf"), "third")
    settings = fake_settings(home, max_queue=4, queue_timeout=5, **scheduling)
    settings.engine = EngineSettings(
        parallel=1, context_length=2048, keep_alive=300, memory_budget_mb=budget_mb
    )
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(settings, factory=world.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        world.client = client
        yield world, app.state.services


Factory = Callable[..., AbstractAsyncContextManager[World]]


@pytest.fixture
def world(tmp_path: Path) -> Factory:
    return lambda budget_mb=150, **kw: budget_world(tmp_path, budget_mb, **kw)


async def chat(client: httpx.AsyncClient, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    return await client.post("/api/chat", json={**body, **extra})


async def ps(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    models = (await client.get("/api/ps")).json()["models"]
    return {m["name"]: m for m in models}


def expires_in(model: dict[str, Any]) -> float:
    return (datetime.fromisoformat(model["expires_at"]) - datetime.now(UTC)).total_seconds()


async def test_a_third_model_unloads_the_least_recently_used(world: Factory) -> None:
    async with world() as (w, _):
        for name in ("tiny", "other", "tiny"):
            assert (await chat(w.client, name)).status_code == 200
        assert (await chat(w.client, "third")).status_code == 200
        resident = await ps(w.client)
        assert set(resident) == {"tiny:latest", "third:latest"}  # other was the LRU idle one
        assert all(m["size"] > 64 * 1024 * 1024 and m["size_vram"] == 0 for m in resident.values())
        health = (await w.client.get("/health")).json()
        assert health["memory_budget"] == {
            "bytes": 150 * 1024 * 1024,
            "used": sum(m["size"] for m in resident.values()),
        }


async def test_a_busy_model_finishes_its_answer_before_it_is_unloaded(world: Factory) -> None:
    async with world(budget_mb=100, max_active_models=0) as (w, _):  # room for one model
        w.delay = 0.05
        assert (await chat(w.client, "tiny")).status_code == 200
        w.engine("tiny:latest").enqueue(*[f"w{i} " for i in range(20)])
        slow = asyncio.create_task(chat(w.client, "tiny"))
        await asyncio.sleep(0.2)
        other = await chat(w.client, "other")  # waits for tiny's answer, then takes its place
        answer = await slow
        assert answer.status_code == 200 and answer.json()["done_reason"] == "stop"
        assert answer.json()["message"]["content"] == "".join(f"w{i} " for i in range(20))
        assert other.status_code == 200
        assert set(await ps(w.client)) == {"other:latest"}


async def test_keep_alive_zero_forever_and_durations(world: Factory) -> None:
    async with world(budget_mb=500) as (w, svc):
        assert (await chat(w.client, "tiny", keep_alive=0)).status_code == 200
        assert await ps(w.client) == {}
        assert (await chat(w.client, "tiny", keep_alive=-1)).status_code == 200
        assert (await ps(w.client))["tiny:latest"]["expires_at"].startswith("2318-")
        assert await svc.pool.unload_idle(now=1e12) == []  # kept forever
        assert (await chat(w.client, "other", keep_alive="5m")).status_code == 200
        assert expires_in((await ps(w.client))["other:latest"]) == pytest.approx(300, abs=5)
        assert (await chat(w.client, "third", keep_alive=30)).status_code == 200
        assert expires_in((await ps(w.client))["third:latest"]) == pytest.approx(30, abs=5)
        # A request without keep_alive puts the default (IAFORALL_KEEP_ALIVE, 300 s) back.
        assert (await chat(w.client, "tiny")).status_code == 200
        assert expires_in((await ps(w.client))["tiny:latest"]) == pytest.approx(300, abs=5)
        # Loading with no message, as Ollama's clients do, also sets it; 0 then unloads.
        load = await w.client.post("/api/generate", json={"model": "third", "keep_alive": "1h"})
        assert load.json()["done_reason"] == "load"
        assert expires_in((await ps(w.client))["third:latest"]) == pytest.approx(3600, abs=5)
        gone = await w.client.post("/api/generate", json={"model": "third", "keep_alive": 0})
        assert gone.json()["done_reason"] == "unload" and "third:latest" not in await ps(w.client)


async def test_a_model_larger_than_the_budget_is_a_clear_error(world: Factory) -> None:
    async with world(budget_mb=32) as (w, _):
        answer = await chat(w.client, "tiny")
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert "more than the whole memory budget of 32 MiB" in error
        assert "IAFORALL_MEMORY_BUDGET_MB" in error
        assert await ps(w.client) == {}


async def test_keep_alive_on_v1_as_our_extension(world: Factory) -> None:
    async with world(budget_mb=500) as (w, _):

        async def v1(model: str, stream: bool = False, **extension: Any) -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            if extension:
                body["iaforall"] = extension
            return await w.client.post("/v1/chat/completions", json={**body, "stream": stream})

        assert (await v1("tiny", keep_alive=-1)).status_code == 200
        assert (await ps(w.client))["tiny:latest"]["expires_at"].startswith("2318-")
        assert (await v1("tiny")).status_code == 200  # unset: unchanged
        assert (await ps(w.client))["tiny:latest"]["expires_at"].startswith("2318-")
        assert (await v1("tiny", keep_alive="2m")).status_code == 200
        assert expires_in((await ps(w.client))["tiny:latest"]) == pytest.approx(120, abs=5)
        streamed = await v1("tiny", stream=True, keep_alive=0)
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
        assert await ps(w.client) == {}
        bad = await v1("tiny", keep_alive="soon")
        assert bad.status_code == 400 and "keep_alive" in bad.text
