"""One transcription at a time; a few wait; beyond that, a 429 at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from iaforall.api.audio import Turn
from iaforall.core.errors import ServerBusy


async def test_one_runs_one_waits_the_next_is_refused() -> None:
    turn = Turn(queue=1)
    release, started = threading.Event(), threading.Event()
    running: list[int] = []

    def work(n: int) -> int:
        running.append(n)
        started.set()
        assert len(running) == 1, "two ran at once"
        release.wait(5)
        running.remove(n)
        return n

    first = asyncio.create_task(turn.run(work, 1))
    assert await asyncio.to_thread(started.wait, 5)
    second = asyncio.create_task(turn.run(work, 2))
    await asyncio.sleep(0.05)
    with pytest.raises(ServerBusy) as busy:
        await turn.run(work, 3)
    assert busy.value.status == 429 and busy.value.retry_after > 0
    release.set()
    assert await first == 1 and await second == 2
    assert await turn.run(work, 4) == 4
