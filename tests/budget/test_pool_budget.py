"""The memory budget in the engine pool, on the fake engine: LRU eviction, busy models kept,
waiting for room, and a model too large for the whole budget."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from iaforall.core.types import ModelId
from iaforall.engines.budget import COMPUTE_ALLOWANCE, MemoryBudgetFull, ModelTooLarge
from iaforall.engines.pool import EnginePool, ModelEntry
from iaforall.engines.protocol import Capabilities, Engine, EngineState
from tests.fake_engine import FakeEngine

MiB = 1024 * 1024
SIZE = 100 * MiB  # each model's file; it costs SIZE + COMPUTE_ALLOWANCE resident
COST = SIZE + COMPUTE_ALLOWANCE


@dataclass(frozen=True)
class Entry:
    name: str
    size: int = SIZE
    path: Path = Path("/nowhere.gguf")  # no header: no KV cache counted, only file + buffers
    context_length: int | None = 2048
    supports_tools: bool = False


class Catalog:
    def get(self, name: str) -> ModelEntry | None:
        if name.startswith("huge"):
            return Entry(name, size=10_000 * MiB)
        if name == "double":  # costs two models
            return Entry(name, size=2 * COST - COMPUTE_ALLOWANCE)
        return Entry(name)


def pool(models: int, wait: float = 5.0) -> tuple[EnginePool, dict[str, FakeEngine]]:
    """A pool whose budget holds exactly `models` models."""
    built: dict[str, FakeEngine] = {}

    def factory(entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        built[entry.name] = FakeEngine(ModelId(entry.name), capabilities)
        return built[entry.name]

    p = EnginePool(
        Catalog(),
        factory,
        slots=1,
        context_length=2048,
        keep_alive=300,
        memory_budget=models * COST,
        wait=wait,
    )
    return p, built


async def test_least_recently_used_idle_model_makes_room() -> None:
    p, built = pool(models=2)
    await p.load("a")
    await p.load("b")
    async with p.use("a"):  # a is now the most recently used
        pass
    await p.load("c")
    assert set(p.residents()) == {"a", "c"}
    assert built["b"].state is EngineState.STOPPED
    assert p.memory_used() == 2 * COST <= p.memory_budget


async def test_a_busy_model_is_never_unloaded_the_load_waits_its_turn() -> None:
    p, built = pool(models=1)
    async with p.use("a") as engine:
        loading = asyncio.create_task(p.load("b"))
        await asyncio.sleep(0.1)
        assert not loading.done()  # b waits: a is answering
        assert engine.state is EngineState.READY and set(p.residents()) == {"a"}
    await asyncio.wait_for(loading, 2)
    assert set(p.residents()) == {"b"} and built["a"].state is EngineState.STOPPED


async def test_the_wait_ends_with_a_clear_503() -> None:
    p, _ = pool(models=1, wait=0.2)
    async with p.use("a"):
        with pytest.raises(MemoryBudgetFull, match=r"memory budget .* is full") as caught:
            await p.load("b")
        assert caught.value.status == 503
    assert set(p.residents()) == {"a"}


async def test_several_models_share_the_budget_concurrently() -> None:
    p, _ = pool(models=2)
    async with p.use("a"), p.use("b"):
        assert set(p.residents()) == {"a", "b"}


async def test_a_model_larger_than_the_budget_is_refused_at_once() -> None:
    p, _ = pool(models=2)
    await p.load("a")
    with pytest.raises(ModelTooLarge, match="more than the whole memory budget") as caught:
        await p.load("huge")
    assert caught.value.status == 400 and "IAFORALL_MEMORY_BUDGET_MB" in caught.value.message
    assert set(p.residents()) == {"a"}  # nothing unloaded for nothing


async def test_concurrent_loads_of_the_same_model_load_it_once() -> None:
    p, built = pool(models=1)
    await asyncio.gather(*(p.load("a") for _ in range(5)))
    assert built["a"].starts == 1 and p.memory_used() == COST


async def test_keep_alive_per_model() -> None:
    p, built = pool(models=3)
    for name in "abc":
        await p.load(name)
    await p.keep("a", 0)  # idle: gone at once
    assert "a" not in p.residents() and built["a"].state is EngineState.STOPPED
    await p.keep("b", -1)
    await p.keep("c", 2)
    assert p.expires_at(p.residents()[ModelId("b")]) is None  # forever
    c_resident = p.residents()[ModelId("c")]
    assert p.expires_at(c_resident) == pytest.approx(c_resident.last_used + 2)
    assert await p.unload_idle(now=c_resident.last_used + 3) == ["c"]
    assert await p.unload_idle(now=1e12) == []  # b stays


async def test_keep_alive_zero_on_a_busy_model_unloads_when_its_last_request_ends() -> None:
    p, built = pool(models=2)
    async with p.use("a"):
        async with p.use("a"):
            await p.keep("a", 0)
            assert "a" in p.residents()
        assert "a" in p.residents()  # one request still runs
    assert "a" not in p.residents() and built["a"].state is EngineState.STOPPED


async def test_a_worker_grown_past_its_estimate_is_counted_at_its_measured_size() -> None:
    p, built = pool(models=2)
    await p.load("a")

    async def grown() -> dict[str, object]:
        return {"pid": 1, "rss_bytes": 2 * COST, "busy_slots": 0}

    built["a"].stats = grown  # type: ignore[method-assign]
    await p.load("b")  # a alone now fills the budget: it makes room
    assert set(p.residents()) == {"b"}


async def test_models_unloaded_to_make_room_are_not_handed_to_a_request_meanwhile() -> None:
    p, built = pool(models=3)
    for name in "abc":
        await p.load(name)
    old_b = built["b"]
    closing = asyncio.Event()

    async def slow_close() -> None:  # a takes its time to stop; b is already out of the table
        await closing.wait()

    built["a"].close = slow_close  # type: ignore[method-assign]
    double = asyncio.create_task(p.load("double"))  # needs two models' room: a and b go
    await asyncio.sleep(0.05)
    asking_b = asyncio.create_task(p.load("b"))
    await asyncio.sleep(0.05)
    assert not asking_b.done()  # never handed the engine being unloaded: it waits its turn
    closing.set()
    await asyncio.wait_for(asyncio.gather(double, asking_b), 2)
    assert old_b.state is EngineState.STOPPED
    assert built["b"] is not old_b and built["b"].state is EngineState.READY
    assert set(p.residents()) == {"double", "b"}  # c, then the least recently used, made room
