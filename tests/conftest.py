"""Shared fixtures: an app on the scriptable fake engine, and tiny stored models."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from iaforall.app import create_app
from iaforall.core.types import ModelId
from iaforall.engines.pool import ModelEntry
from iaforall.engines.protocol import Capabilities, Engine
from iaforall.models.store import ModelStore
from iaforall.settings import (
    EngineSettings,
    SchedulingSettings,
    ServerSettings,
    Settings,
    StoreSettings,
)
from tests.fake_engine import FakeEngine
from tests.models.gguf_files import write_gguf

# Servers in tests start quiet: warming the voice at start is tested where it is the subject
# (tests/engines/test_warm_up.py), not paid by every server a test starts.
os.environ.setdefault("IAFORALL_WARM_UP", "false")
# The CPU budget fixed at the cores this process may use: left to follow the machine, it would
# shrink while other tests keep the cores busy and make waits depend on the load. The budget's
# own tests (tests/scheduling/test_cpu*.py, test_machine.py) set what they check.
os.environ.setdefault("IAFORALL_CPU_CORES", str(len(os.sched_getaffinity(0))))

# For any test folder: the real server and models; a real PostgreSQL, databases on both.
pytest_plugins = ["tests.real_server", "tests.store.postgres"]


@dataclass
class FakeWorld:
    """A fake-engine app and the engines it built, by model name."""

    client: httpx.AsyncClient
    engines: dict[str, FakeEngine] = field(default_factory=dict)
    delay: float = 0.0

    def engine(self, name: str) -> FakeEngine:
        return self.engines[name]

    def factory(self, entry: ModelEntry, capabilities: Capabilities, threads: int = 0) -> Engine:
        engine = FakeEngine(ModelId(entry.name), capabilities, delay=self.delay)
        self.engines[entry.name] = engine
        return engine


def fake_settings(home: Path, **scheduling: float) -> Settings:
    return Settings(
        store=StoreSettings(home=home, install_missing=False),
        server=ServerSettings(model="tiny:latest", preload=False),
        engine=EngineSettings(parallel=1, context_length=2048, keep_alive=300),
        scheduling=SchedulingSettings(**scheduling),
    )


def stock_store(home: Path) -> ModelStore:
    store = ModelStore(home, install_missing=False)
    for name in ("tiny", "other"):
        store.add_local(write_gguf(home / "src" / f"{name}.gguf"), name)
    return store


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind real HTTP on a free loopback port, in this event loop."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeWorld]:
    """The real app over real HTTP, with the fake engine behind it."""
    stock_store(tmp_path)
    world = FakeWorld(client=httpx.AsyncClient())
    app = create_app(fake_settings(tmp_path, max_queue=2, queue_timeout=5), factory=world.factory)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        world.client = client
        yield world
