"""One Whisper model as a runtime: made by the registry, lined up for by the scheduler."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities
from iaforall.engines.whisper import BEAM_SIZE, Run, Whisper, WhisperModel
from iaforall.scheduling.cpu import ThreadChoice

# A transcription on one thread takes about this many times as long as on two. Measured by
# bench/contention.py (2026-12-06, tiny.en, beam 5, 17.8 s of our own voice, 3 runs each,
# alternated): 1 thread 1.97-2.29 s, 2 threads 2.25-2.58 s, ratio 0.89 -- on a shared 2-core
# machine where other programs kept 80 % of the CPU busy, which is when the choice arises (a
# core is busy): a second thread then buys nothing. (The 1.6 it replaces was an estimate for a
# quiet machine.) The scheduler starts a transcription on one thread when only one core is free
# and that ends sooner than waiting for the second (scheduling/cpu.py): with 0.9, always.
ONE_THREAD_TIME = 0.9

MiB = 1024 * 1024
# Memory a loaded model keeps (int8 on the CPU), measured as the server's RSS growth on load,
# CTranslate2's libraries included; a model not measured is counted as the largest.
RESIDENT = {"whisper:tiny.en": 90 * MiB, "whisper:base": 185 * MiB}


class WhisperRuntime:
    """`begin` blocks (decoding happens as the run's segments are read): call it in a thread,
    holding the scheduler's slot for this model, with the threads the slot came with.

    CTranslate2 fixes a model's threads when it loads: a run on fewer threads uses a second copy
    of the model loaded with one thread (made the first time it is needed)."""

    def __init__(
        self, spec: WhisperModel, home: Path, threads: int, beam_size: int = BEAM_SIZE
    ) -> None:
        self.spec = spec
        self.model = ModelId(spec.name)
        self._whisper = Whisper(home, threads, beam_size)
        most = self._whisper.threads
        self._fewer = Whisper(home, 1, beam_size) if most > 1 else None
        self.capabilities = RuntimeCapabilities(
            "speech_to_text",
            most,
            fewer=(ThreadChoice(1, ONE_THREAD_TIME),) if most > 1 else (),
        )

    @property
    def state(self) -> EngineState:
        return EngineState.READY if self._whisper.loaded(self.spec) else EngineState.STOPPED

    async def start(self) -> None:
        await asyncio.to_thread(self._whisper.load, self.spec)

    def warm_cost(self) -> int:
        return RESIDENT.get(self.spec.name, max(RESIDENT.values()))

    async def warm(self) -> None:
        await self.start()  # loading is the cost: a first transcription then runs as fast

    def begin(
        self,
        audio: Any,
        *,
        task: str = "transcribe",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float = 0.0,
        threads: int = 0,
    ) -> Run:
        """`threads`: what the scheduler gave the job (0: its most)."""
        whisper = self._whisper
        if self._fewer is not None and 0 < threads < whisper.threads:
            whisper = self._fewer
        return whisper.start(
            self.spec, audio, task=task, language=language, prompt=prompt, temperature=temperature
        )

    async def stats(self) -> dict[str, Any]:
        path = self._whisper.path(self.spec)
        return {
            "threads": self.capabilities.threads,
            "beam_size": self._whisper.beam_size,
            "path": str(path) if path is not None else None,  # the store's copy or a package's
        }

    async def close(self) -> None:
        self._whisper.unload()
        if self._fewer is not None:
            self._fewer.unload()
