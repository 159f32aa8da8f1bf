"""The voices as one runtime: piper's resident processes and eSpeak NG, behind OpenAI's speech
model names. Made by the registry, lined up for by the scheduler, closed with the app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities
from iaforall.engines.tts import MODELS, Speaker, piper_voices, voices
from iaforall.engines.tts.espeak import Choice

NAME = ModelId(MODELS[0])  # "tts-1": what OpenAI's clients send
ALIASES = MODELS[1:]
# A resident piper process with its voice: ~150 MiB idle, up to 390 MiB while it speaks
# (docs/voice.md); eSpeak NG keeps nothing between pieces.
PIPER_RESIDENT = 390 * 1024 * 1024


class SpeakerRuntime:
    """piper starts on the first English sentence and stays for `keep_alive` seconds; eSpeak NG
    runs once per piece. One synthesis at a time: each keeps a core busy."""

    model = NAME

    def __init__(self, keep_alive: float, espeak: Choice, home: Path | None = None) -> None:
        self.speaker = Speaker(keep_alive, espeak)
        self.home = home
        self.capabilities = RuntimeCapabilities("text_to_speech", threads=1)
        self._closed = False

    @property
    def state(self) -> EngineState:
        return EngineState.STOPPED if self._closed else EngineState.READY

    async def start(self) -> None:
        self._closed = False

    def warm_cost(self) -> int:
        return PIPER_RESIDENT if piper_voices(self.home) else 0

    async def warm(self) -> None:
        """piper's first voice started (its first line costs ~0.7 s, the next ~0.15 s), and
        eSpeak NG run once so its program and voice data are in the page cache."""
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        first_of_each = {v.engine: v for v in reversed(voices(self.speaker.espeak, self.home))}
        for voice in first_of_each.values():
            if not self._closed:  # the app may be stopping already
                self.speaker.synthesize(voice, "Ready.")

    async def stats(self) -> dict[str, Any]:
        piper = self.speaker.running_piper()
        found = await asyncio.to_thread(piper_voices, self.home)
        return {
            "piper_processes": len(piper.processes()) if piper is not None else 0,
            # where each piper voice is read from: the store's copy or a package's
            "piper_voices": {voice.id: voice.target for voice in found},
        }

    async def close(self) -> None:
        self._closed = True
        await asyncio.to_thread(self.speaker.close)
