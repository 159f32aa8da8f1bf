"""The scheduler: bounded admission, waiting, cancellation, release on error."""

from __future__ import annotations

import asyncio

import pytest

from iaforall.core.errors import ServerBusy
from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.policy import Policy

M = ModelId("m")
ANN, BOB, CAT = UserId("ann"), UserId("bob"), UserId("cat")


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


# -- fair order, positions and expected waits -----------------------------------------------


@pytest.mark.parametrize(("policy", "bob_served"), [("fair", 1), ("fifo", 5)])
async def test_a_newcomer_goes_before_a_flood_unless_fifo(policy: Policy, bob_served: int) -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=16, queue_timeout=5, policy=policy)
    order: list[str] = []

    async def work(name: str, user: UserId) -> None:
        async with s.slot(M, user):
            order.append(name)
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(work(f"ann{i}", ANN)) for i in range(5)]
    await asyncio.sleep(0.001)
    tasks.append(asyncio.create_task(work("bob", BOB)))
    await asyncio.gather(*tasks)
    assert order.index("bob") == bob_served
    assert [n for n in order if n != "bob"] == [f"ann{i}" for i in range(5)]  # FIFO per user


async def test_positions_and_waits_follow_the_line() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5)
    seen: dict[str, list[tuple[int, float]]] = {"ann": [], "bob": [], "cat": []}
    release = {name: asyncio.Event() for name in seen}

    async def work(name: str, cost: float) -> None:
        async with s.ticket(M, UserId(name), cost=cost) as ticket:
            async for status in ticket.wait():
                seen[name].append((status.position, status.wait_s))
            await release[name].wait()

    tasks = [asyncio.create_task(work("ann", 100))]
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(work("bob", 40)))
    await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(work("cat", 40)))
    await asyncio.sleep(0.01)
    assert seen["ann"] == [(0, 0.0)]  # served at once
    assert [p for p, _ in seen["bob"]] == [1] and [p for p, _ in seen["cat"]] == [2]
    # Waits: Ann's 100 tokens at the default 0.05 s each, then Bob's 40 before Cat's.
    assert seen["bob"][0][1] == pytest.approx(5.0, abs=0.2)
    assert seen["cat"][0][1] == pytest.approx(7.0, abs=0.2)
    release["ann"].set()
    await asyncio.sleep(0.01)
    assert seen["bob"][-1] == (0, 0.0) and [p for p, _ in seen["cat"]] == [2, 1]
    release["bob"].set()
    release["cat"].set()
    await asyncio.gather(*tasks)
    assert [p for p, _ in seen["cat"]] == [2, 1, 0]


async def test_a_waiter_that_leaves_moves_the_others_up() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5)
    positions: list[int] = []

    async def watch() -> None:
        async with s.ticket(M, CAT) as ticket:
            async for status in ticket.wait():
                positions.append(status.position)

    async with s.slot(M, ANN):
        bob = asyncio.create_task(_hold(s, BOB, 0))
        await asyncio.sleep(0.01)
        cat = asyncio.create_task(watch())
        await asyncio.sleep(0.01)
        bob.cancel()
        await asyncio.sleep(0.01)
        assert positions == [2, 1]
    await cat
    assert positions == [2, 1, 0]


async def test_used_tokens_teach_the_speed_and_settle_the_cost() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5)
    async with s.ticket(M, ANN, cost=500) as ticket:
        async for _ in ticket.wait():
            pass
        await asyncio.sleep(0.1)
        ticket.used(0, 10)
    assert s.seconds_per_token(M) == pytest.approx(0.01, rel=0.5)
    assert s.seconds_per_token(ModelId("never-used")) == 0.05


async def test_a_waiter_timing_out_after_updates_is_busy() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=0.05)
    async with s.slot(M, ANN):
        with pytest.raises(ServerBusy, match="within"):
            async with s.ticket(M, BOB) as ticket:
                async for status in ticket.wait():
                    assert status.position == 1
        assert s.queue_length == 0


async def test_expected_waits_follow_the_answers_being_streamed() -> None:
    """Ann's answer has made 50 of its 100 tokens in about 0.1 s: Bob waits about 0.1 s more."""
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5)
    async with s.slot(M, ANN, cost=100) as ann:
        await asyncio.sleep(0.1)
        ann.produced = 50
        async with s.ticket(M, BOB) as bob:
            async for status in bob.wait():
                assert status.position == 1
                assert status.wait_s == pytest.approx(0.1, abs=0.05)
                break


async def test_snapshot_lists_running_then_waiting_in_serving_order() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5)
    release = asyncio.Event()

    async def work(user: UserId) -> None:
        async with s.slot(M, user):
            await release.wait()

    tasks = [asyncio.create_task(work(u)) for u in (ANN, ANN, ANN, BOB)]
    await asyncio.sleep(0.01)
    places = s.snapshot()
    assert [(p.user, p.position) for p in places] == [(ANN, 0), (BOB, 1), (ANN, 2), (ANN, 3)]
    assert places[1].wait_s > 0 and places[0].wait_s == 0
    release.set()
    await asyncio.gather(*tasks)
    assert s.snapshot() == []


async def test_a_waiter_that_does_not_move_hears_its_place_again() -> None:
    """Behind a long answer the place stays the same for minutes: it is said again every
    heartbeat, so that the waiting stream is never silent long enough for a proxy or a client
    to give up on it (the soak bench counted such silences of 60 s as hangs)."""
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=5, heartbeat=0.05)
    seen: list[int] = []

    async def watch() -> None:
        async with s.ticket(M, BOB) as ticket:
            async for status in ticket.wait():
                seen.append(status.position)

    async with s.slot(M, ANN):
        bob = asyncio.create_task(watch())
        await asyncio.sleep(0.28)
        assert 4 <= len(seen) <= 7 and set(seen) == {1}  # on admission, then every 0.05 s
    await asyncio.wait_for(bob, 1)
    assert seen[-1] == 0


async def test_heartbeats_do_not_stretch_the_queue_timeout() -> None:
    s = Scheduler(slots_for=lambda _: 1, max_queue=8, queue_timeout=0.2, heartbeat=0.03)
    loop = asyncio.get_running_loop()
    async with s.slot(M, ANN):
        start = loop.time()
        with pytest.raises(ServerBusy, match="within"):
            async with s.ticket(M, BOB) as ticket:
                async for status in ticket.wait():
                    assert status.position == 1
        assert 0.19 <= loop.time() - start < 1.0
        assert s.queue_length == 0


async def test_a_full_line_gives_the_flooders_newest_place_to_a_newcomer() -> None:
    s = scheduler(max_queue=3)
    async with s.slot(M, ANN):
        floods = [asyncio.create_task(_hold(s, ANN, 0)) for _ in range(3)]
        await asyncio.sleep(0.01)
        assert s.queue_length == 3
        bob = asyncio.create_task(_hold(s, BOB, 0))
        await asyncio.sleep(0.01)
        # Ann's newest request lost its place at once, with a hint of when to retry
        assert floods[2].done()
        with pytest.raises(ServerBusy, match="place went to someone") as lost:
            await floods[2]
        assert lost.value.retry_after >= 1
        assert not bob.done() and s.queue_length == 3
        # Ann (2 waiting) against Bob (1): one more of Ann's would only swap who is refused
        with pytest.raises(ServerBusy, match="already waiting"):
            await _hold(s, ANN, 0)
        cat = asyncio.create_task(_hold(s, CAT, 0))  # 2 against 0: Ann gives up one more
        await asyncio.sleep(0.01)
        assert floods[1].done() and not cat.done()
        with pytest.raises(ServerBusy):
            await floods[1]
    await asyncio.wait_for(asyncio.gather(floods[0], bob, cat), 2)
    assert s.queue_length == 0 and s.running(M) == 0
