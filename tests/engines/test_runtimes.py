"""The runtime registry: made on first use, started once however many ask at once, found by
alias, refused by kind, all closed at the end (a later use makes them again)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from iaforall.core.errors import ModelNotFound
from iaforall.core.types import ModelId
from iaforall.engines.protocol import EngineState
from iaforall.engines.runtime import RuntimeCapabilities, Runtimes, RuntimeSpec


class Counted:
    model = ModelId("ear")

    def __init__(self) -> None:
        self.capabilities = RuntimeCapabilities("speech_to_text", threads=2)
        self.starts = 0
        self.closes = 0
        self.loaded = False

    @property
    def state(self) -> EngineState:
        return EngineState.READY if self.loaded else EngineState.STOPPED

    async def start(self) -> None:
        if not self.loaded:
            self.starts += 1
            await asyncio.sleep(0.05)
            self.loaded = True

    async def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self.closes += 1
        self.loaded = False


async def test_made_once_started_once_closed_once() -> None:
    made: list[Counted] = []

    def build() -> Counted:
        made.append(Counted())
        return made[-1]

    runtimes = Runtimes([RuntimeSpec(ModelId("ear"), "speech_to_text", build, ("ear-1",))])
    assert made == [] and runtimes.slots_for(ModelId("ear")) == 1
    assert runtimes.slots_for(ModelId("a-chat-model")) is None
    got = await asyncio.gather(*(runtimes.ready(n) for n in ("ear", "ear-1", "ear")))
    assert len(made) == 1 and all(g is made[0] for g in got) and made[0].starts == 1
    with pytest.raises(ModelNotFound):
        runtimes.resolve("ear", "text_to_speech")
    with pytest.raises(ModelNotFound):
        runtimes.get("mouth")
    await runtimes.close()
    assert made[0].closes == 1 and made[0].state is EngineState.STOPPED
    await runtimes.close()
    assert made[0].closes == 1
    assert (await runtimes.ready("ear")) is made[1]  # made again after a close


async def test_runtimes_installed_later_are_added_and_deleted_ones_closed() -> None:
    """What a pull or a delete through the running server changes: the new one is known at
    once, one already made is left as it is, a deleted one is closed and forgotten."""
    made: list[Counted] = []

    def build() -> Counted:
        made.append(Counted())
        return made[-1]

    runtimes = Runtimes([])
    with pytest.raises(ModelNotFound):
        runtimes.resolve("ear")
    runtimes.add([RuntimeSpec(ModelId("ear"), "speech_to_text", build, ("whisper-1",))])
    first = await runtimes.ready("whisper-1")
    runtimes.add([RuntimeSpec(ModelId("ear"), "speech_to_text", build)])  # known: unchanged
    assert await runtimes.ready("ear") is first and len(made) == 1
    await runtimes.remove(ModelId("ear"))
    assert first.closes == 1 and runtimes.made() == [] and runtimes.specs() == []
    with pytest.raises(ModelNotFound):
        runtimes.resolve("whisper-1")
    await runtimes.remove(ModelId("ear"))  # twice: nothing more to do
