"""Lazy loading, idle unloading and restart after a crash, on the fake engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ModelId
from iaforall.engines import pool as pool_module
from iaforall.engines.pool import EnginePool, ModelEntry
from iaforall.engines.protocol import Capabilities, Engine, EngineState
from tests.fake_engine import FakeEngine


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path = Path("/nowhere.gguf")
    context_length: int | None = 8192
    supports_tools: bool = False
    size: int = 0


class Catalog:
    def get(self, name: str) -> ModelEntry | None:
        return Entry(name if ":" in name else f"{name}:latest") if name != "missing" else None


def pool(
    keep_alive: float = 300, *, threads: int = 0, follow_budget: bool = False
) -> tuple[EnginePool, list[FakeEngine]]:
    built: list[FakeEngine] = []

    def factory(entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        built.append(FakeEngine(ModelId(entry.name), capabilities))
        built[-1].threads = threads  # type: ignore[attr-defined]
        return built[-1]

    return EnginePool(
        Catalog(),
        factory,
        slots=2,
        context_length=4096,
        keep_alive=keep_alive,
        threads=threads,
        follow_budget=follow_budget,
    ), built


async def test_lazy_load_once_and_capabilities() -> None:
    p, built = pool()
    assert built == []
    async with p.use("a") as engine:
        assert engine.state is EngineState.READY
        assert engine.capabilities == Capabilities(slots=2, context_length=4096, tools=False)
    await p.load("a:latest")
    assert len(built) == 1 and built[0].starts == 1


async def test_unknown_model() -> None:
    p, _ = pool()
    with pytest.raises(ModelNotFound):
        await p.load("missing")


async def test_idle_models_unload_but_not_while_in_use() -> None:
    p, built = pool(keep_alive=0)
    async with p.use("a"):
        assert await p.unload_idle() == []  # in use: never unloaded under a request
    assert await p.unload_idle() == [ModelId("a:latest")]
    assert built[0].state is EngineState.STOPPED and p.residents() == {}


async def test_negative_keep_alive_keeps_forever() -> None:
    p, _ = pool(keep_alive=-1)
    await p.load("a")
    assert await p.unload_idle(now=1e12) == []


async def test_crashed_engine_restarts_on_next_use() -> None:
    p, built = pool()
    await p.load("a")
    built[0].crash()
    async with p.use("a") as engine:
        assert engine.state is EngineState.READY
    assert built[0].starts == 2


async def test_an_idle_worker_restarts_with_the_threads_the_budget_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, built = pool(threads=2, follow_budget=True)
    async with p.use("a", 2):
        pass
    async with p.use("a", 1) as engine:  # a foreign program took a core: at once
        assert engine is built[1] and engine.threads == 1  # type: ignore[attr-defined]
        assert built[0].state is EngineState.STOPPED
        async with p.use("a", 2) as same:  # in use: not restarted under a running job
            assert same is engine
    async with p.use("a", 2) as engine:  # more threads: not so soon after a restart
        assert engine is built[1]
    monkeypatch.setattr(pool_module, "GROW_AFTER_S", 0.0)  # (as if GROW_AFTER_S went by)
    async with p.use("a", 1) as engine:  # given its threads again: the count starts over
        assert engine is built[1]
    async with p.use("a", 2) as engine:  # given more once: it may be between two of another's
        assert engine is built[1]
    async with p.use("a", 2) as engine:  # twice in a row: it grows
        assert engine is built[2] and engine.threads == 2  # type: ignore[attr-defined]
    async with p.use("a") as engine:  # no budget's word (a prompt's render): as it is
        assert engine is built[2]
    assert len(built) == 3 and p.restarts == 2
    assert [m.threads for m in p.threads_for(ModelId("a:latest"))] == [2, 1]


async def test_threads_set_by_hand_are_kept() -> None:
    p, built = pool(threads=2, follow_budget=False)
    async with p.use("a", 1):
        pass
    assert len(built) == 1 and built[0].threads == 2  # type: ignore[attr-defined]
    assert [m.threads for m in p.threads_for(ModelId("a:latest"))] == [2]
