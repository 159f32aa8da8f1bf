"""One Whisper model as a runtime: made by the registry, lined up for by the scheduler."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities
from iaforall.engines.whisper import BEAM_SIZE, Run, Whisper, WhisperModel

MiB = 1024 * 1024
# Memory a loaded model keeps (int8 on the CPU), measured as the server's RSS growth on load,
# CTranslate2's libraries included; a model not measured is counted as the largest.
RESIDENT = {"whisper:tiny.en": 90 * MiB, "whisper:base": 185 * MiB}


class WhisperRuntime:
    """`begin` blocks (decoding happens as the run's segments are read): call it in a thread,
    holding the scheduler's slot for this model."""

    def __init__(
        self, spec: WhisperModel, home: Path, threads: int, beam_size: int = BEAM_SIZE
    ) -> None:
        self.spec = spec
        self.model = ModelId(spec.name)
        self._whisper = Whisper(home, threads, beam_size)
        self.capabilities = RuntimeCapabilities("speech_to_text", self._whisper.threads)

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
    ) -> Run:
        return self._whisper.start(
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
