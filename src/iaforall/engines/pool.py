"""The loaded engines: lazy load on first use, restart after a crash, unload when idle.

Residency is bounded by a memory budget (engines/budget.py): loading a model that would pass
it first unloads the least recently used idle models; a model in use is never unloaded, so a
load that needs its room waits (up to `wait`) for it to finish, then fails with 503.
"""

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
from iaforall.engines import budget as policy
from iaforall.engines.protocol import Capabilities, Engine, EngineState
from iaforall.engines.runtime import Runtimes
from iaforall.models.projector import projector_for
from iaforall.scheduling.cpu import ThreadChoice, choices, scaled

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
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


class Catalog(Protocol):
    def get(self, name: str) -> ModelEntry | None: ...


class EngineFactory(Protocol):
    """Builds the engine of a stored model, with `threads` CPU threads (0: its default)."""

    def __call__(
        self, entry: ModelEntry, capabilities: Capabilities, threads: int = 0
    ) -> Engine: ...


# A worker restarted with fewer threads gets more back only this long after: each restart costs
# a load and the prompt cache, and a budget or a share that moves back and forth would make
# restarts cost more than the threads gain (fewer threads are taken at once: too many collapse).
GROW_AFTER_S = 20.0
# ... and only at the second job in a row that the budget gives more: a first one is often a
# chat's between two jobs of another model's stream (a transcription, an ingestion's stages),
# whose next job gives it its share again; growing for it cost two restarts of a second each
# (SmolLM2) in a 15 s window. That job runs on the threads the worker has: fewer, never more.
GROW_AFTER_JOBS = 2
# llama.cpp's decode time on k threads of n grows as (n / k) ** this (121-128 tok/s on 2
# threads, 68 on 1, on this 2-core machine): what giving a worker fewer threads costs.
LLAMA_SCALING = 0.9


@dataclass
class Resident:
    engine: Engine
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    size: int = 0  # the estimate made before loading, bytes
    measured: int = 0  # the worker's resident memory when last looked at (RSS), bytes

    @property
    def counted(self) -> int:
        """What the budget counts: the estimate, or the measured RSS once it is larger."""
        return max(self.size, self.measured)

    keep_alive: float | None = None  # set by a request (Ollama's keep_alive); None: the default
    threads: int = 0  # the engine's CPU threads (0: its factory's default)
    rebuild: Callable[[int], Engine] | None = None  # the same engine with other threads
    refitted_at: float = 0.0  # when it last restarted with other threads (monotonic)
    offered_more: int = 0  # jobs in a row the budget gave more threads than it has


class EnginePool:
    def __init__(
        self,
        catalog: Catalog,
        factory: EngineFactory,
        *,
        slots: int,
        context_length: int,
        keep_alive: float,
        memory_budget: int = 0,
        wait: float = 120.0,
        runtimes: Runtimes | None = None,
        threads: int = 0,
        follow_budget: bool = False,
    ) -> None:
        """`threads`: each llama.cpp worker's when it loads; `follow_budget`: a worker may be
        restarted with fewer, between jobs, when the CPU budget gives its jobs fewer (the
        threads were left to the machine: IAFORALL_THREADS=0)."""
        self._catalog = catalog
        self._threads = threads
        self._follow_budget = follow_budget and threads > 1
        self.restarts = 0  # workers restarted with other threads (what /health shows)
        # Whisper, the voices, OCR, the built-in encoder: made on first use, closed with us.
        self.runtimes = runtimes or Runtimes([])
        self._factory = factory
        self._slots = slots
        self._context_length = context_length
        self.keep_alive = keep_alive
        self._residents: dict[ModelId, Resident] = {}
        self.memory_budget = memory_budget  # bytes; 0: no limit
        self._wait = wait
        self._admit = asyncio.Lock()  # one admission (eviction + registration) at a time
        self._freed = asyncio.Event()  # a model went idle or was unloaded

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
        runtime = self.runtimes.slots_for(model)
        return self._slots if runtime is None else runtime

    def threads_for(self, model: ModelId) -> tuple[ThreadChoice, ...]:
        """The threads a job on `model` holds: a runtime's choices, else its worker's."""
        runtime = self.runtimes.threads_for(model)
        if runtime is not None:
            return runtime
        fewer = scaled(self._threads, LLAMA_SCALING) if self._follow_budget else ()
        return choices(self._threads, fewer)

    def residents(self) -> dict[ModelId, Resident]:
        return dict(self._residents)

    def keep_alive_of(self, resident: Resident) -> float:
        """Seconds this model stays loaded once idle (negative: forever)."""
        return self.keep_alive if resident.keep_alive is None else resident.keep_alive

    def expires_at(self, resident: Resident) -> float | None:
        """Monotonic time at which an idle model unloads; None while busy or kept forever."""
        keep = self.keep_alive_of(resident)
        if resident.in_use or keep < 0:
            return None
        return resident.last_used + keep

    def memory_used(self) -> int:
        return sum(r.counted for r in self._residents.values())

    async def measure(self) -> None:
        """Look at each worker's resident memory (RSS) now."""
        for resident in list(self._residents.values()):
            with contextlib.suppress(Exception):  # a worker gone: its estimate stays
                rss = (await resident.engine.stats()).get("rss_bytes")
                resident.measured = rss if isinstance(rss, int) else 0

    async def keep(self, name: str, seconds: float | None) -> None:
        """A request's keep_alive, from now on: seconds once idle, negative forever, None the
        default; 0 unloads at once if idle, else as soon as the last request ends."""
        resident = self._residents.get(ModelId(name))
        if resident is None:
            return
        resident.keep_alive = seconds
        if seconds == 0:
            await self._unload_if_idle(ModelId(name), resident)

    async def _unload_if_idle(self, model: ModelId, resident: Resident) -> None:
        if resident.in_use or resident.lock.locked() or self._residents.get(model) is not resident:
            return
        del self._residents[model]
        await resident.engine.close()
        self._freed.set()

    @contextlib.asynccontextmanager
    async def use(self, name: str, threads: int = 0) -> AsyncIterator[Engine]:
        """A loaded engine for `name`, kept resident while the block runs; `threads`: what the
        CPU budget gave the job (0: any), which an idle worker is restarted with if it has
        other (with `follow_budget`)."""
        resident = await self._loaded(name, threads)
        resident.in_use += 1
        try:
            yield resident.engine
        finally:
            resident.in_use -= 1
            resident.last_used = time.monotonic()
            self._freed.set()
            if resident.keep_alive == 0:  # a request's keep_alive 0: gone as soon as idle
                await self._unload_if_idle(resident.engine.model, resident)

    async def load(self, name: str) -> Engine:
        return (await self._loaded(name)).engine

    async def _loaded(self, name: str, threads: int = 0) -> Resident:
        # A resident model needs no look-up in the store (a manifest read per request).
        resident = self._residents.get(ModelId(name))
        if resident is None:
            entry = self._catalog.get(name)
            if entry is None:
                raise ModelNotFound(name)
            model = ModelId(entry.name)
            resident = self._residents.get(model)
            if resident is None:
                resident = await self._admitted(model, entry, threads)
        model = resident.engine.model
        async with resident.lock:  # one load at a time; others wait for it
            if threads > 0:
                more = threads > resident.threads > 0
                resident.offered_more = resident.offered_more + 1 if more else 0
            if self._refit(resident, threads):
                log.info("restarting %s with %d threads (the CPU budget's)", model, threads)
                await resident.engine.close()
                assert resident.rebuild is not None  # (checked by _refit)
                resident.engine, resident.threads = resident.rebuild(threads), threads
                resident.refitted_at = time.monotonic()
                resident.offered_more = 0
                self.restarts += 1
            if resident.engine.state is EngineState.CRASHED:
                log.warning("restarting the engine of %s after a crash", model)
                await resident.engine.close()
            if resident.engine.state is not EngineState.READY:
                await resident.engine.start()
        resident.last_used = time.monotonic()
        return resident

    def _refit(self, resident: Resident, threads: int) -> bool:
        """Whether an idle worker must restart to run a job with `threads` threads: the
        budget gave fewer or more than it has (a foreign program took a core, another model
        works beside it, or they are gone). Its prompt cache is lost; a job on a worker with
        too many threads would spin against the others and collapse, so fewer are taken at
        once, more only `GROW_AFTER_S` after the last restart and at the `GROW_AFTER_JOBS`th
        job in a row given more."""
        return (
            self._follow_budget
            and threads > 0
            and resident.rebuild is not None
            and resident.threads not in (0, threads)
            and resident.in_use == 0
            and (
                threads < resident.threads
                or (
                    resident.offered_more >= GROW_AFTER_JOBS
                    and time.monotonic() - resident.refitted_at >= GROW_AFTER_S
                )
            )
        )

    async def _admitted(self, model: ModelId, entry: ModelEntry, threads: int = 0) -> Resident:
        """Register `model`, unloading least recently used idle models to fit the budget."""
        caps = self._capabilities(entry)
        size = await asyncio.to_thread(
            policy.estimate, entry.path, entry.size, caps.context_length * caps.slots
        )
        if self.memory_budget and size > self.memory_budget:
            raise policy.ModelTooLarge(
                f"{model} needs about {size // policy.MiB} MiB resident (file, KV cache for "
                f"{caps.slots} x {caps.context_length} tokens, buffers), more than the whole "
                f"memory budget of {self.memory_budget // policy.MiB} MiB. Raise "
                "IAFORALL_MEMORY_BUDGET_MB, or lower IAFORALL_CONTEXT_LENGTH or IAFORALL_PARALLEL.",
                param="model",
            )
        deadline = time.monotonic() + self._wait
        async with self._admit:
            while True:
                resident = self._residents.get(model)
                if resident is not None:  # another request loaded it while we waited
                    return resident
                await self.measure()
                victims = self._plan(size)
                if victims is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise policy.MemoryBudgetFull(
                        f"The memory budget ({self.memory_budget // policy.MiB} MiB) is full of "
                        f"models in use; {model} (about {size // policy.MiB} MiB) could not be "
                        f"loaded within {self._wait:.0f} s. Try again shortly, or raise "
                        "IAFORALL_MEMORY_BUDGET_MB."
                    )
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), left)
            # All out of the table before the first await, so none is picked up meanwhile.
            gone = [self._residents.pop(victim) for victim in victims]
            for victim, evicted in zip(victims, gone, strict=True):
                log.info("unloading %s to make room for %s in the memory budget", victim, model)
                await evicted.engine.close()
            # Registered and returned with no await between: `_loaded` locks it at once.
            threads = threads if self._follow_budget and threads > 0 else self._threads

            def rebuild(threads: int) -> Engine:
                return self._factory(entry, caps, threads)

            resident = Resident(rebuild(threads), size=size, threads=threads, rebuild=rebuild)
            self._residents[model] = resident
            return resident

    def _plan(self, need: int) -> list[ModelId] | None:
        if not self.memory_budget:
            return []
        candidates = [
            policy.Candidate(model, r.counted, r.in_use > 0 or r.lock.locked(), r.last_used)
            for model, r in self._residents.items()
        ]
        victims = policy.plan(candidates, need, self.memory_budget)
        return None if victims is None else [ModelId(str(v)) for v in victims]

    async def unload(self, name: str) -> bool:
        model, _ = self.resolve(name)
        resident = self._residents.pop(model, None)
        if resident is None:
            return False
        await resident.engine.close()
        self._freed.set()
        return True

    async def unload_idle(self, now: float | None = None) -> list[ModelId]:
        now = time.monotonic() if now is None else now
        gone = []
        for model, resident in list(self._residents.items()):
            expires = self.expires_at(resident)
            if expires is not None and expires <= now and not resident.lock.locked():
                del self._residents[model]
                await resident.engine.close()
                log.info("unloaded %s after %.0f s idle", model, self.keep_alive_of(resident))
                gone.append(model)
                self._freed.set()
        return gone

    async def reap_forever(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            await self.unload_idle()

    async def close(self) -> None:
        residents, self._residents = self._residents, {}
        for resident in residents.values():
            await resident.engine.close()
        await self.runtimes.close()
