"""The voices as one runtime: piper's resident processes and eSpeak NG, behind OpenAI's speech
model names. Made by the registry, lined up for by the scheduler, closed with the app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities
from iaforall.engines.tts import MODELS, Speaker, piper_voices
from iaforall.engines.tts.espeak import Choice

NAME = ModelId(MODELS[0])  # "tts-1": what OpenAI's clients send
ALIASES = MODELS[1:]


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
