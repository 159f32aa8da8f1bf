"""The loaded engines: lazy load on first use, restart after a crash, unload when idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ModelId
from iaforall.engines.protocol import Capabilities, Engine, EngineState
from iaforall.vision.projector import projector_for

log = logging.getLogger(__name__)


class ModelEntry(Protocol):
    """What the pool needs to know of a stored model (see models.store.ModelInfo)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def context_length(self) -> int | None: ...
    @property
    def supports_tools(self) -> bool: ...


class Catalog(Protocol):
    def get(self, name: str) -> ModelEntry | None: ...


EngineFactory = Callable[[ModelEntry, Capabilities], Engine]


@dataclass
class Resident:
    engine: Engine
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class EnginePool:
    def __init__(
        self,
        catalog: Catalog,
        factory: EngineFactory,
        *,
        slots: int,
        context_length: int,
        keep_alive: float,
    ) -> None:
        self._catalog = catalog
        self._factory = factory
        self._slots = slots
        self._context_length = context_length
        self.keep_alive = keep_alive
        self._residents: dict[ModelId, Resident] = {}

    def resolve(self, name: str) -> tuple[ModelId, Capabilities]:
        entry = self._catalog.get(name)
        if entry is None:
            raise ModelNotFound(name)
        return ModelId(entry.name), self._capabilities(entry)

    def _capabilities(self, entry: ModelEntry) -> Capabilities:
        trained = entry.context_length or self._context_length
        return Capabilities(
            slots=self._slots,
            context_length=min(self._context_length, trained),
            tools=entry.supports_tools,
            vision=projector_for(entry.path) is not None,
        )

    def slots_for(self, model: ModelId) -> int:
        return self._slots

    def residents(self) -> dict[ModelId, Resident]:
        return dict(self._residents)

    def expires_at(self, resident: Resident) -> float | None:
        """Monotonic time at which an idle model unloads; None while busy or kept forever."""
        if resident.in_use or self.keep_alive < 0:
            return None
        return resident.last_used + self.keep_alive

    @contextlib.asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[Engine]:
        """A loaded engine for `name`, kept resident while the block runs."""
        resident = await self._loaded(name)
        resident.in_use += 1
        try:
            yield resident.engine
        finally:
            resident.in_use -= 1
            resident.last_used = time.monotonic()

    async def load(self, name: str) -> Engine:
        return (await self._loaded(name)).engine

    async def _loaded(self, name: str) -> Resident:
        # A resident model needs no look-up in the store (a manifest read per request).
        resident = self._residents.get(ModelId(name))
        if resident is None:
            entry = self._catalog.get(name)
            if entry is None:
                raise ModelNotFound(name)
            model = ModelId(entry.name)
            resident = self._residents.get(model)
            if resident is None:
                resident = Resident(self._factory(entry, self._capabilities(entry)))
                self._residents[model] = resident
        model = resident.engine.model
        async with resident.lock:  # one load at a time; others wait for it
            if resident.engine.state is EngineState.CRASHED:
                log.warning("restarting the engine of %s after a crash", model)
                await resident.engine.close()
            if resident.engine.state is not EngineState.READY:
                await resident.engine.start()
        resident.last_used = time.monotonic()
        return resident

    async def unload(self, name: str) -> bool:
        model, _ = self.resolve(name)
        resident = self._residents.pop(model, None)
        if resident is None:
            return False
        await resident.engine.close()
        return True

    async def unload_idle(self, now: float | None = None) -> list[ModelId]:
        now = time.monotonic() if now is None else now
        gone = []
        for model, resident in list(self._residents.items()):
            expires = self.expires_at(resident)
            if expires is not None and expires <= now and not resident.lock.locked():
                del self._residents[model]
                await resident.engine.close()
                log.info("unloaded %s after %.0f s idle", model, self.keep_alive)
                gone.append(model)
        return gone

    async def reap_forever(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.unload_idle()

    async def close(self) -> None:
        residents, self._residents = self._residents, {}
        for resident in residents.values():
            await resident.engine.close()
