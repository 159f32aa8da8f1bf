"""The runtimes beside llama.cpp (Whisper, the voices, OCR, the built-in sentence encoder, the
image models): one small contract, one registry that makes each on first use and closes them all
with the app.

A runtime is a model the scheduler lines people up for, like a chat model: it has a name (its
queue in the scheduler), what it does (`kind`), how many jobs it runs at once (`slots`) and the
CPU threads one job uses (counted against the CPU budget: scheduling/cpu.py), with the fewer
threads it can also run a job with, if any. Its work itself is blocking (numpy, ONNX,
CTranslate2, a subprocess), run in a thread by the caller once the scheduler gave the slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ModelId
from iaforall.engines.install import install_command
from iaforall.engines.protocol import EngineState
from iaforall.scheduling.cpu import ThreadChoice, choices

Kind = Literal["chat", "speech_to_text", "text_to_speech", "embeddings", "ocr", "image"]
KINDS: tuple[Kind, ...] = (
    "chat",
    "speech_to_text",
    "text_to_speech",
    "embeddings",
    "ocr",
    "image",
)


@dataclass(frozen=True, slots=True)
class RuntimeCapabilities:
    kind: Kind
    threads: int  # CPU threads one job keeps busy
    slots: int = 1  # jobs at once; more wait in the scheduler's line
    fewer: tuple[ThreadChoice, ...] = ()  # fewer threads a job can run with, and how slowly
    memory: int = 0  # bytes it keeps once loaded, an estimate (0: not said)

    def ways(self) -> tuple[ThreadChoice, ...]:
        """The threads a job can run with, most first (what the scheduler chooses from)."""
        return choices(self.threads, self.fewer)


class Runtime(Protocol):
    """What the registry and the scheduler need of a runtime."""

    model: ModelId
    capabilities: RuntimeCapabilities

    @property
    def state(self) -> EngineState: ...

    async def start(self) -> None:
        """Load the model (idempotent); EngineUnavailable when it cannot."""

    async def stats(self) -> dict[str, Any]:
        """What `ps` and `/health` may show."""

    async def close(self) -> None:
        """Stop its processes and free its memory; safe to call twice. A later `start` loads
        it again."""


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """A runtime this server can make: its name, other names that reach it, and how."""

    model: ModelId
    kind: Kind
    build: Callable[[], Runtime]
    aliases: tuple[str, ...] = ()


class Runtimes:
    """The runtimes installed here, by name (aliases included); each is made on first use,
    started once (others asking meanwhile wait for it), and all are closed by `close`."""

    def __init__(self, specs: Iterable[RuntimeSpec]) -> None:
        self._specs: dict[ModelId, RuntimeSpec] = {}
        self._names: dict[str, ModelId] = {}
        for spec in specs:
            self._specs[spec.model] = spec
            for name in (spec.model, *spec.aliases):
                self._names.setdefault(name, spec.model)
        self._made: dict[ModelId, Runtime] = {}
        self._starting: dict[ModelId, asyncio.Lock] = {}

    def add(self, specs: Iterable[RuntimeSpec]) -> None:
        """Runtimes installed since (a pull through the server): the new ones become known;
        those already known stay as they are."""
        for spec in specs:
            if spec.model not in self._specs:
                self._specs[spec.model] = spec
                for name in (spec.model, *spec.aliases):
                    self._names.setdefault(name, spec.model)

    async def remove(self, model: ModelId) -> None:
        """Forget a runtime whose model was deleted, closing it if it was made."""
        spec = self._specs.pop(model, None)
        if spec is None:
            return
        self._names = {k: v for k, v in self._names.items() if v != model}
        runtime = self._made.pop(model, None)
        if runtime is not None:
            await runtime.close()

    def specs(self) -> list[RuntimeSpec]:
        """What each runtime is (name, kind, aliases), in registration order."""
        return list(self._specs.values())

    def find(self, name: str) -> ModelId | None:
        return self._names.get(name)

    def resolve(self, name: str, kind: Kind | None = None) -> ModelId:
        """The runtime's own name; ModelNotFound if there is none (of that kind)."""
        model = self._names.get(name)
        if model is None or (kind is not None and self._specs[model].kind != kind):
            raise ModelNotFound(name, install=install_command(name))
        return model

    def slots_for(self, model: ModelId) -> int | None:
        """Jobs at once on `model`, or None when it is not a runtime (a llama.cpp model)."""
        spec = self._specs.get(model)
        if spec is None:
            return None
        made = self._made.get(model)
        return made.capabilities.slots if made is not None else 1

    def threads_for(self, model: ModelId) -> tuple[ThreadChoice, ...] | None:
        """The threads a job on `model` can run with, most first; None when it is not a
        runtime. (The runtime is made, not loaded, to ask it.)"""
        if model not in self._specs:
            return None
        return self.get(model).capabilities.ways()

    def get(self, name: str) -> Runtime:
        """The runtime (made now if it was not), not necessarily started."""
        model = self.resolve(name)
        runtime = self._made.get(model)
        if runtime is None:
            runtime = self._specs[model].build()
            self._made[model] = runtime
        return runtime

    async def ready(self, name: str) -> Runtime:
        """The runtime, started."""
        runtime = self.get(name)
        if runtime.state is not EngineState.READY:
            lock = self._starting.setdefault(runtime.model, asyncio.Lock())
            async with lock:
                await runtime.start()  # idempotent: a no-op if another request started it
        return runtime

    def made(self) -> list[Runtime]:
        return list(self._made.values())

    async def close(self) -> None:
        made, self._made = self._made, {}
        for runtime in made.values():
            await runtime.close()
