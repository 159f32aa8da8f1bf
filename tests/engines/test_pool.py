"""Lazy loading, idle unloading and restart after a crash, on the fake engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ModelId
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


def pool(keep_alive: float = 300) -> tuple[EnginePool, list[FakeEngine]]:
    built: list[FakeEngine] = []

    def factory(entry: ModelEntry, capabilities: Capabilities) -> Engine:
        built.append(FakeEngine(ModelId(entry.name), capabilities))
        return built[-1]

    return EnginePool(
        Catalog(), factory, slots=2, context_length=4096, keep_alive=keep_alive
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
