"""The CPU budget's decisions, table-driven: how many threads a job starts with now, or none."""

from __future__ import annotations

import asyncio

import pytest

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.cpu import (
    CpuLoad,
    ThreadChoice,
    choices,
    scaled,
    seconds_until_free,
    share,
    threads_to_start,
)
from iaforall.scheduling.loop import DEFAULT_SECONDS_PER_TOKEN, Scheduler
from iaforall.scheduling.policy import Waiting, pick_next

CHAT, WHISPER, VOICE, OCR = ModelId("chat"), ModelId("whisper"), ModelId("tts"), ModelId("ocr")
ANN, BOB = UserId("ann"), UserId("bob")

TWO = choices(2)  # a chat model's worker, two threads, no other way
ONE = choices(1)  # a voice
WHISPER_WAYS = choices(2, [ThreadChoice(1, 1.6)])  # one thread takes 1.6 x as long
ENCODER, READER = ModelId("use:multilingual"), ModelId("reader")
ENCODER_WAYS = choices(2, [ThreadChoice(1, 1.3)])  # the sentence encoder


def test_choices_are_most_threads_first_and_keep_only_fewer() -> None:
    ways = choices(4, [ThreadChoice(1, 3.0), ThreadChoice(2, 1.7), ThreadChoice(4, 0.5)])
    assert ways == (ThreadChoice(4, 1.0), ThreadChoice(2, 1.7), ThreadChoice(1, 3.0))
    assert choices(0) == (ThreadChoice(0, 1.0),)


def test_scaled_ways_cost_more_the_fewer_threads() -> None:
    assert scaled(2, 0.9) == (ThreadChoice(1, 2**0.9),)
    assert [w.threads for w in scaled(4, 1.0)] == [3, 2, 1]
    assert scaled(4, 1.0)[-1].time == 4.0
    assert scaled(1, 0.9) == ()


LLAMA = choices(2, scaled(2, 0.9))  # a chat worker that may restart on one thread (1.87 x)
SHARE_CASES = [
    # (cores, active models and their ways, expected most threads each)
    pytest.param(2, {CHAT: LLAMA}, {CHAT: 2}, id="alone: all its threads"),
    pytest.param(
        2, {CHAT: LLAMA, WHISPER: WHISPER_WAYS}, {CHAT: 1, WHISPER: 1}, id="side by side: 1.16"
    ),
    pytest.param(2, {CHAT: LLAMA, VOICE: ONE}, {CHAT: 1, VOICE: 1}, id="chat beside a voice"),
    pytest.param(
        2, {CHAT: TWO, VOICE: ONE}, {CHAT: 2, VOICE: 1}, id="chat cannot shrink: they take turns"
    ),
    pytest.param(
        2,
        {CHAT: choices(2, [ThreadChoice(1, 2.5)]), WHISPER: choices(2, [ThreadChoice(1, 2.5)])},
        {CHAT: 2, WHISPER: 2},
        id="both much slower on one thread: turns do more (0.8 < 1)",
    ),
    pytest.param(
        2,
        {CHAT: LLAMA, WHISPER: WHISPER_WAYS, VOICE: ONE},
        {CHAT: 1, WHISPER: 1, VOICE: 1},
        id="three on two cores: those that shrink split them, the voice takes a free one",
    ),
    pytest.param(
        2,
        {CHAT: LLAMA, ENCODER: ENCODER_WAYS, READER: ONE},
        {CHAT: 1, ENCODER: 1, READER: 1},
        id="a chat beside a document read then embedded",
    ),
    pytest.param(
        2,
        {CHAT: LLAMA, ENCODER: ONE, READER: ONE},
        {CHAT: 1, ENCODER: 1, READER: 1},
        id="a chat beside a one-thread encoder and the reader: it leaves them a core",
    ),
    pytest.param(
        2,
        {CHAT: TWO, WHISPER: WHISPER_WAYS, VOICE: ONE},
        {CHAT: 2, WHISPER: 1, VOICE: 1},
        id="three on two cores, whisper shrinks: the chat cannot, whisper leaves it room",
    ),
    pytest.param(
        2,
        {CHAT: TWO, VOICE: ONE, READER: ONE},
        {CHAT: 2, VOICE: 1, READER: 1},
        id="three on two cores, none shrinks: they take turns",
    ),
    pytest.param(
        4,
        {CHAT: choices(4, scaled(4, 0.9)), VOICE: ONE, READER: ONE},
        {CHAT: 2, VOICE: 1, READER: 1},
        id="four cores: the chat takes what the two one-way models leave",
    ),
    pytest.param(0, {CHAT: LLAMA, VOICE: ONE}, {CHAT: 2, VOICE: 1}, id="no budget"),
]


@pytest.mark.parametrize(("cores", "active", "expected"), SHARE_CASES)
def test_share(
    cores: int, active: dict[ModelId, tuple[ThreadChoice, ...]], expected: dict[ModelId, int]
) -> None:
    assert share(cores, active) == expected


def test_a_cap_limits_the_threads_a_job_starts_with() -> None:
    assert threads_to_start(CpuLoad(2), CHAT, LLAMA, cap=1) == 1
    assert threads_to_start(CpuLoad(2), CHAT, TWO, cap=1) == 2  # no way fits the cap
    assert threads_to_start(CpuLoad(2, {CHAT: 2}), CHAT, LLAMA, cap=1) == 2  # already held


START_CASES = [
    # (cores, held, model, ways, run_s, wait_s, expected)
    pytest.param(2, {}, CHAT, TWO, 0, 0, 2, id="idle: chat takes its two threads"),
    pytest.param(2, {CHAT: 2}, WHISPER, WHISPER_WAYS, 10, 5, None, id="full: whisper waits"),
    pytest.param(2, {CHAT: 2}, VOICE, ONE, 1, 5, None, id="full: even one thread waits"),
    pytest.param(2, {CHAT: 2}, CHAT, TWO, 0, 0, 2, id="chat's second slot shares its threads"),
    pytest.param(2, {VOICE: 1}, VOICE, ONE, 0, 0, 1, id="a model's jobs share its threads"),
    pytest.param(2, {VOICE: 1}, CHAT, TWO, 0, 0, None, id="chat waits for a voice (2 > 1 free)"),
    pytest.param(4, {VOICE: 1}, CHAT, TWO, 0, 0, 2, id="room for both on four cores"),
    pytest.param(2, {}, OCR, choices(8), 0, 0, 8, id="larger than the budget: runs alone"),
    pytest.param(
        1, {}, WHISPER, WHISPER_WAYS, 10, 0, 1, id="a budget of one: the one-thread way, at once"
    ),
    pytest.param(2, {VOICE: 1}, OCR, choices(8), 0, 0, None, id="larger: waits until alone"),
    pytest.param(
        2, {VOICE: 1}, WHISPER, WHISPER_WAYS, 10, 20, 1, id="one free core: 16 s now < 20 + 10"
    ),
    pytest.param(
        2, {VOICE: 1}, WHISPER, WHISPER_WAYS, 10, 2, None, id="one free core: wait 2 + 10 < 16 s"
    ),
    pytest.param(
        2, {VOICE: 1}, WHISPER, WHISPER_WAYS, 10, 6, None, id="a tie waits (16 s both ways)"
    ),
    pytest.param(
        2,
        {VOICE: 1},
        WHISPER,
        choices(2, [ThreadChoice(1, 2.5)]),
        10,
        10,
        None,
        id="one thread much slower: waits (25 s now > 10 + 10)",
    ),
    pytest.param(
        4,
        {CHAT: 2, VOICE: 1},
        OCR,
        choices(4, [ThreadChoice(2, 1.5), ThreadChoice(1, 2.5)]),
        10,
        30,
        1,
        id="only one core free: the one-thread way, 25 s now < 30 + 10",
    ),
    pytest.param(
        4,
        {VOICE: 1},
        OCR,
        choices(4, [ThreadChoice(2, 1.5), ThreadChoice(1, 2.5)]),
        10,
        30,
        2,
        id="three free: the fastest way that fits (two threads)",
    ),
    pytest.param(0, {CHAT: 2}, WHISPER, WHISPER_WAYS, 0, 0, 2, id="no budget: all threads"),
    pytest.param(2, {CHAT: 2}, ModelId("remote"), (), 0, 0, 0, id="no threads here: starts"),
    pytest.param(2, {CHAT: 2}, ModelId("remote"), choices(0), 0, 0, 0, id="zero threads fit"),
]


@pytest.mark.parametrize(
    ("cores", "held", "model", "ways", "run_s", "wait_s", "expected"), START_CASES
)
def test_threads_to_start(
    cores: int,
    held: dict[ModelId, int],
    model: ModelId,
    ways: tuple[ThreadChoice, ...],
    run_s: float,
    wait_s: float,
    expected: int | None,
) -> None:
    load = CpuLoad(cores, held)
    assert threads_to_start(load, model, ways, run_s=run_s, wait_s=wait_s) == expected


UNTIL_CASES = [
    # (cores, running (threads, seconds left), threads needed, expected seconds)
    pytest.param(2, [], 2, 0.0, id="nothing running"),
    pytest.param(2, [(1, 5.0)], 1, 0.0, id="free now"),
    pytest.param(2, [(2, 5.0)], 1, 5.0, id="when the chat ends"),
    pytest.param(4, [(2, 9.0), (1, 3.0)], 2, 3.0, id="the voice ending is enough"),
    pytest.param(4, [(2, 9.0), (1, 3.0)], 3, 9.0, id="needs the chat to end"),
    pytest.param(2, [(1, 4.0), (1, 7.0)], 8, 7.0, id="larger than the budget: when all end"),
]


@pytest.mark.parametrize(("cores", "running", "threads", "expected"), UNTIL_CASES)
def test_seconds_until_free(
    cores: int, running: list[tuple[int, float]], threads: int, expected: float
) -> None:
    assert seconds_until_free(cores, running, threads) == expected


def w(seq: int, model: ModelId, user: UserId) -> Waiting:
    return Waiting(seq, model, user, 100, 1.0)


PICK_CASES = [
    # (waiting, threads each would start with (None: waits for cores), expected index)
    pytest.param([w(0, WHISPER, ANN)], {WHISPER: 2}, 0, id="fits: starts"),
    pytest.param([w(0, WHISPER, ANN)], {WHISPER: None}, None, id="no cores: waits"),
    pytest.param(
        [w(0, WHISPER, ANN), w(1, CHAT, BOB)],
        {WHISPER: None, CHAT: 2},
        None,
        id="a newer request does not overtake one waiting for cores",
    ),
    pytest.param(
        [w(1, WHISPER, ANN), w(0, CHAT, BOB)],
        {WHISPER: None, CHAT: 2},
        1,
        id="an older one that fits goes first",
    ),
    pytest.param(
        [w(0, WHISPER, ANN), w(1, VOICE, BOB)],
        {WHISPER: 1, VOICE: 1},
        0,
        id="started on fewer threads",
    ),
]


@pytest.mark.parametrize(("waiting", "threads", "expected"), PICK_CASES)
def test_pick_next_keeps_the_line_for_cores(
    waiting: list[Waiting], threads: dict[ModelId, int | None], expected: int | None
) -> None:
    chosen = pick_next(
        waiting,
        {WHISPER: 1, CHAT: 2, VOICE: 1},
        {},
        policy="fifo",
        start_threads=lambda entry: threads[entry.model],
    )
    assert chosen == (None if expected is None else waiting[expected])


def test_a_job_without_a_free_slot_does_not_hold_the_line_for_cores() -> None:
    waiting = [w(0, WHISPER, ANN), w(1, VOICE, BOB)]
    chosen = pick_next(
        waiting, {WHISPER: 0, VOICE: 1}, {}, start_threads=lambda e: None if e.seq == 0 else 1
    )
    assert chosen == waiting[1]


# -- the scheduler applying the budget -------------------------------------------------------


def budgeted(
    cores: int, ways: dict[ModelId, tuple[ThreadChoice, ...]], slots: int = 1
) -> Scheduler:
    return Scheduler(
        slots_for=lambda _: slots,
        max_queue=8,
        queue_timeout=5,
        cpu_cores=cores,
        threads_for=lambda model: ways[model],
    )


async def test_the_slots_of_one_model_share_its_threads() -> None:
    s = budgeted(2, {CHAT: TWO}, slots=2)
    async with s.slot(CHAT, ANN) as one, s.slot(CHAT, BOB) as two:
        assert (one.threads, two.threads) == (2, 2)
        assert s.cpu().held == {CHAT: 2} and s.cpu().in_use == 2
    assert s.cpu().in_use == 0


async def test_two_one_thread_jobs_run_together_and_a_third_waits_its_turn() -> None:
    enc = ModelId("encoder")
    s = budgeted(2, {VOICE: ONE, enc: ONE, CHAT: TWO})
    async with s.slot(VOICE, ANN), s.slot(enc, BOB):
        assert s.cpu().in_use == 2
        waiting = asyncio.create_task(_run(s, CHAT, ANN))
        await asyncio.sleep(0.02)
        assert s.queue_length == 1 and s.snapshot()[-1].position == 1
    assert await asyncio.wait_for(waiting, 1) == 2


async def test_a_job_larger_than_the_budget_runs_alone_then_the_others() -> None:
    s = budgeted(2, {OCR: choices(8), VOICE: ONE})
    order: list[str] = []
    async with s.slot(VOICE, ANN):
        big = asyncio.create_task(_run(s, OCR, BOB, order, hold=0.05))
        await asyncio.sleep(0.02)
        later = asyncio.create_task(_run(s, VOICE, ANN, order))  # must not overtake it
        await asyncio.sleep(0.02)
        assert order == []
    assert await asyncio.wait_for(big, 1) == 8
    await asyncio.wait_for(later, 1)
    assert order == ["ocr", "tts"]


async def test_whisper_starts_on_one_thread_when_waiting_would_end_later() -> None:
    s = budgeted(2, {VOICE: ONE, WHISPER: WHISPER_WAYS})
    # A long speech holds one core (2000 tokens to go); the transcription is short.
    async with s.slot(VOICE, ANN, cost=2000), s.slot(WHISPER, BOB, cost=50) as ticket:
        assert ticket.threads == 1
        assert s.cpu().held == {VOICE: 1, WHISPER: 1}


async def test_whisper_waits_for_both_threads_when_the_other_job_ends_soon() -> None:
    s = budgeted(2, {VOICE: ONE, WHISPER: WHISPER_WAYS})
    async with s.slot(VOICE, ANN, cost=5):  # about to end
        waiting = asyncio.create_task(_run(s, WHISPER, BOB, cost=500))
        await asyncio.sleep(0.02)
        assert s.queue_length == 1
    assert await asyncio.wait_for(waiting, 1) == 2


async def _run(
    s: Scheduler,
    model: ModelId,
    user: UserId,
    order: list[str] | None = None,
    *,
    hold: float = 0.0,
    cost: float | None = None,
) -> int:
    async with s.slot(model, user, cost=cost) as ticket:
        if order is not None:
            order.append(str(model))
        await asyncio.sleep(hold)
        return ticket.threads


async def test_a_job_waiting_for_cores_is_told_how_long_until_they_free_up() -> None:
    s = budgeted(2, {CHAT: TWO, WHISPER: WHISPER_WAYS})
    async with s.slot(CHAT, ANN, cost=100), s.ticket(WHISPER, BOB, cost=10) as waiting:
        # Whisper has a free slot of its own: only the chat's 100 tokens to go keep it waiting.
        assert waiting.status.position == 1
        assert waiting.status.wait_s == pytest.approx(100 * DEFAULT_SECONDS_PER_TOKEN)


async def test_two_streams_of_jobs_run_side_by_side_on_one_thread_each() -> None:
    """Chats and transcriptions, one after the other for different people: once both are
    streams of jobs, each runs on one core beside the other instead of waiting for both."""
    s = budgeted(2, {CHAT: LLAMA, WHISPER: WHISPER_WAYS})
    assert await _run(s, CHAT, ANN) == 2  # alone: both threads
    assert await _run(s, WHISPER, BOB) == 2
    assert await _run(s, CHAT, ANN) == 2  # a stream of chats; one transcription is no stream
    assert await _run(s, WHISPER, BOB) == 1  # two streams now
    async with s.slot(CHAT, ANN) as chat:
        assert chat.threads == 1
        async with s.slot(WHISPER, BOB) as whisper:
            assert whisper.threads == 1
            assert s.cpu().in_use == 2


async def test_a_single_job_beside_a_stream_keeps_the_usual_trade() -> None:
    s = budgeted(2, {VOICE: ONE, WHISPER: WHISPER_WAYS})
    await _run(s, VOICE, ANN)
    async with s.slot(VOICE, ANN, cost=5):  # a stream of speech, about to end
        waiting = asyncio.create_task(_run(s, WHISPER, BOB, cost=500))  # one transcription
        await asyncio.sleep(0.02)
        assert s.queue_length == 1  # waits for both threads rather than run 1.6 x as long
    assert await asyncio.wait_for(waiting, 1) == 2
