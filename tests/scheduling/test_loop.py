"""The scheduler: bounded admission, waiting, cancellation, release on error."""

from __future__ import annotations

import asyncio

import pytest

from iaforall.core.errors import ServerBusy
from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.loop import Scheduler

M = ModelId("m")
ANN, BOB = UserId("ann"), UserId("bob")


def scheduler(slots: int = 1, max_queue: int = 2, queue_timeout: float = 5.0) -> Scheduler:
    return Scheduler(slots_for=lambda _: slots, max_queue=max_queue, queue_timeout=queue_timeout)


async def test_grants_free_slot_at_once_then_queues() -> None:
    s = scheduler()
    async with s.slot(M, ANN):
        assert s.running(M) == 1
        waiter = asyncio.create_task(_hold(s, BOB, 0))
        await asyncio.sleep(0.01)
        assert s.queued(M) == 1 and not waiter.done()
    await asyncio.wait_for(waiter, 1)
    assert s.running(M) == 0 and s.queue_length == 0


async def test_full_queue_is_busy_with_retry_hint() -> None:
    s = scheduler(max_queue=1)
    async with s.slot(M, ANN):
        waiter = asyncio.create_task(_hold(s, BOB, 0))
        await asyncio.sleep(0.01)
        with pytest.raises(ServerBusy) as busy:
            await _hold(s, BOB, 0)
        assert busy.value.retry_after >= 1
    await waiter


async def test_queue_timeout_is_busy_and_leaves_the_queue() -> None:
    s = scheduler(queue_timeout=0.05)
    async with s.slot(M, ANN):
        with pytest.raises(ServerBusy, match="within"):
            await _hold(s, BOB, 0)
        assert s.queue_length == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    s = scheduler()
    async with s.slot(M, ANN):
        waiter = asyncio.create_task(_hold(s, BOB, 0))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert s.queue_length == 0
    assert s.running(M) == 0


async def test_slot_released_when_the_work_fails() -> None:
    s = scheduler()
    with pytest.raises(RuntimeError):
        async with s.slot(M, ANN):
            raise RuntimeError("engine fell over")
    assert s.running(M) == 0
    async with s.slot(M, BOB):
        assert s.running(M) == 1


async def test_two_slots_run_two_at_once() -> None:
    s = scheduler(slots=2)
    started = asyncio.Event()
    release = asyncio.Event()

    async def work(user: UserId) -> None:
        async with s.slot(M, user):
            if s.running(M) == 2:
                started.set()
            await release.wait()

    tasks = [asyncio.create_task(work(u)) for u in (ANN, BOB)]
    await asyncio.wait_for(started.wait(), 1)
    release.set()
    await asyncio.gather(*tasks)


async def _hold(s: Scheduler, user: UserId, seconds: float) -> None:
    async with s.slot(M, user):
        await asyncio.sleep(seconds)


async def test_one_model_at_a_time_with_bounded_wait() -> None:
    s = Scheduler(slots_for=lambda _: 2, max_queue=8, queue_timeout=5, max_active_models=1)
    other = ModelId("other")
    order: list[str] = []

    async def work(model: ModelId, name: str, seconds: float) -> None:
        async with s.slot(model, ANN):
            order.append(name)
            await asyncio.sleep(seconds)

    first = asyncio.create_task(work(M, "m1", 0.05))
    await asyncio.sleep(0.01)
    held = asyncio.create_task(work(other, "other", 0))
    await asyncio.sleep(0.01)
    later = asyncio.create_task(work(M, "m2", 0))  # a free slot, but it must not overtake
    await asyncio.gather(first, held, later)
    assert order == ["m1", "other", "m2"]
