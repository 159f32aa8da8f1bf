"""A job on a runtime (a transcription, a speech), admitted like an answer: the person's
quotas, then a place in the scheduler's one line (429 at once when it is full), its position
as the line moves, then the runtime's work in a thread, its pieces read as they come. The
pipeline's `job` is the door to it."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from iaforall.core.events import QueueUpdate
from iaforall.core.types import ModelId, Principal, Usage
from iaforall.engines.runtime import Runtime, Runtimes
from iaforall.engines.threaded import Put, thread_items
from iaforall.people.gate import Gate
from iaforall.scheduling.loop import Scheduler

Work = Callable[[Runtime, Put[Any], threading.Event], None]


@dataclass
class Tally:
    """What the work used, filled in by it as it goes (read when the job ends); and the CPU
    threads the scheduler gave it, set before it runs (a runtime that can run with fewer uses
    that many: see scheduling/cpu.py)."""

    usage: Usage | None = None
    threads: int = 0


async def in_line(
    gate: Gate,
    scheduler: Scheduler,
    runtimes: Runtimes,
    me: Principal,
    model: ModelId,
    prepare: Callable[[], Awaitable[float]],
    work: Work,
    tally: Tally,
) -> AsyncGenerator[Any, None]:
    """QueueUpdates (the first on arrival, the last with position 0 when the slot is granted),
    then what `work` puts. `prepare` runs once the quotas allow the job and before it takes a
    place in line (checking the input, which gives its cost: its estimate for the scheduler).
    Refusals before the first item (quotas, a full line, bad input) are raised at once."""
    async with gate.job(me, model) as report:
        estimate = await prepare()
        weight = gate.weight(me)
        async with scheduler.ticket(model, me.user, weight=weight, cost=estimate) as ticket:
            async for status in ticket.wait():
                yield QueueUpdate(status.position, status.wait_s)
            tally.threads = ticket.threads
            runtime = await runtimes.ready(model)
            items: AsyncGenerator[Any, None] = thread_items(
                lambda put, stop: work(runtime, put, stop)
            )
            try:
                async for item in items:
                    yield item
            finally:
                await items.aclose()
                if tally.usage is not None:
                    ticket.used(tally.usage.prompt_tokens, tally.usage.completion_tokens)
                    report(tally.usage)


async def arrival(items: AsyncGenerator[Any, None]) -> QueueUpdate:
    """The job's place on arrival; refusals before it are raised here (a real HTTP status)."""
    try:
        first = await anext(items)
    except BaseException:
        await items.aclose()
        raise
    assert isinstance(first, QueueUpdate)
    return first


async def drain(items: AsyncGenerator[Any, None]) -> tuple[QueueUpdate, list[Any]]:
    """The whole job: its place on arrival, and everything its work put."""
    admission = await arrival(items)
    got: list[Any] = []
    try:
        async for item in items:
            if not isinstance(item, QueueUpdate):
                got.append(item)
    finally:
        await items.aclose()
    return admission, got
