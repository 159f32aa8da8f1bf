"""A job done in pieces as its input arrives (a transcription of audio still being spoken):
admitted once like any job (the person's quotas; one request among theirs for the whole), then
a place in the scheduler's line for each piece, so the runtime's slot is held only while a piece
is worked on, never while the input is awaited. What every piece used is reported once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from iaforall.answering.jobs import Tally, Work
from iaforall.core.types import ModelId, Principal, Usage
from iaforall.engines.runtime import Runtimes
from iaforall.engines.threaded import thread_items
from iaforall.people.gate import Gate
from iaforall.scheduling.loop import Scheduler


class Pieces:
    """`run` one piece in its turn; `usage` is what the pieces used so far."""

    def __init__(
        self, scheduler: Scheduler, runtimes: Runtimes, me: Principal, model: ModelId, weight: float
    ) -> None:
        self._scheduler = scheduler
        self._runtimes = runtimes
        self._me = me
        self._model = model
        self._weight = weight
        self.usage = Usage(0, 0)

    async def run(self, cost: float, work: Work, tally: Tally) -> list[Any]:
        """Wait for the slot, then everything `work` puts (it fills `tally`'s usage; the
        threads the slot came with are in `tally` before it runs)."""
        got: list[Any] = []
        async with self._scheduler.ticket(
            self._model, self._me.user, weight=self._weight, cost=cost
        ) as ticket:
            async for _ in ticket.wait():
                pass
            tally.threads = ticket.threads
            runtime = await self._runtimes.ready(self._model)
            items: AsyncGenerator[Any, None] = thread_items(
                lambda put, stop: work(runtime, put, stop)
            )
            try:
                async for item in items:
                    got.append(item)
            finally:
                await items.aclose()
                if (used := tally.usage) is not None:
                    ticket.used(used.prompt_tokens, used.completion_tokens)
                    self.usage = Usage(
                        self.usage.prompt_tokens + used.prompt_tokens,
                        self.usage.completion_tokens + used.completion_tokens,
                    )
        return got


@contextlib.asynccontextmanager
async def in_pieces(
    gate: Gate, scheduler: Scheduler, runtimes: Runtimes, me: Principal, model: ModelId
) -> AsyncIterator[Pieces]:
    """The person's quotas checked (refused at once), then their pieces until the block ends."""
    async with gate.job(me, model) as report:
        pieces = Pieces(scheduler, runtimes, me, model, gate.weight(me))
        try:
            yield pieces
        finally:
            if pieces.usage.total_tokens:
                report(pieces.usage)
