"""Other programs' load on our cores, from /proc readings, and the budget it leaves us:
table-driven, then the loop applying it to a real scheduler, then a reading of a /proc laid out
in a folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.cpu import choices
from iaforall.scheduling.loop import Scheduler
from iaforall.scheduling.machine import (
    MachineLoad,
    Reading,
    budget_beside,
    cores_busy,
    follow_forever,
    foreign_cores,
    process_ticks,
    read_machine,
    tree_ticks,
)

STAT = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 100 0 50 350 0 0 0 0 0 0
cpu1 200 0 50 240 10 0 0 0 0 0
cpu2 0 0 0 1000 0 0 0 0 0 0
intr 12345
ctxt 999
"""


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        pytest.param({0}, (150, 500), id="one core"),
        pytest.param({0, 1}, (400, 1000), id="two cores: iowait is idle"),
        pytest.param({0, 1, 2}, (400, 2000), id="an idle third core"),
        pytest.param({7}, (0, 0), id="a core not listed"),
    ],
)
def test_cores_busy(cpus: set[int], expected: tuple[int, int]) -> None:
    assert cores_busy(STAT, cpus) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "42 (python3) S 7 42 42 0 -1 0 0 0 0 0 150 30 5 2 20 0 3 0 100 0 0",
            (7, 187),
            id="utime + stime + reaped children",
        ),
        pytest.param(
            "43 (llama worker (2)) R 42 42 42 0 -1 0 0 0 0 0 900 100 0 0 20 0 9 0 100 0 0",
            (42, 1000),
            id="a name with spaces and parentheses",
        ),
    ],
)
def test_process_ticks(text: str, expected: tuple[int, int]) -> None:
    assert process_ticks(text) == expected


def test_tree_ticks_counts_the_root_and_its_descendants_only() -> None:
    processes = {
        1: (0, 5000),  # init
        42: (1, 100),  # us
        43: (42, 1000),  # our llama.cpp worker
        44: (43, 10),  # something it started
        50: (1, 7000),  # another program
    }
    assert tree_ticks(processes, 42) == 1110
    assert tree_ticks(processes, 99) == 0


def reading(busy: int, total: int, ours: int, cores: int = 2) -> Reading:
    return Reading(busy, total, ours, cores)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(reading(0, 0, 0), reading(100, 200, 100), 0.0, id="all the busy time ours"),
        pytest.param(reading(0, 0, 0), reading(150, 200, 50), 1.0, id="another busy core"),
        pytest.param(reading(0, 0, 0), reading(60, 200, 10), 0.5, id="half a core"),
        pytest.param(reading(0, 0, 0), reading(10, 200, 40), 0.0, id="ours counted late: 0"),
        pytest.param(reading(5, 9, 0), reading(5, 9, 0), 0.0, id="no time passed"),
        pytest.param(reading(0, 0, 0, 4), reading(300, 400, 100, 4), 2.0, id="two of four cores"),
    ],
)
def test_foreign_cores(before: Reading, after: Reading, expected: float) -> None:
    assert foreign_cores(before, after) == pytest.approx(expected)


BUDGET_CASES = [
    # (cores, others' load, budget now, budget after)
    pytest.param(2, 0.0, 2, 2, id="quiet: all of them"),
    pytest.param(2, 0.4, 2, 2, id="a little load: kept"),
    pytest.param(2, 0.6, 2, 1, id="most of a core: theirs, at once"),
    pytest.param(2, 1.9, 2, 1, id="never below one"),
    pytest.param(2, 0.9, 1, 1, id="still busy: stays"),
    pytest.param(2, 0.4, 1, 1, id="between the lines: no flapping"),
    pytest.param(2, 0.2, 1, 2, id="quiet again: given back"),
    pytest.param(4, 1.6, 4, 2, id="two cores taken at once"),
    pytest.param(4, 1.2, 2, 3, id="given back one at a time"),
    pytest.param(4, 1.3, 2, 2, id="not quiet enough for one more"),
    pytest.param(4, 0.0, 2, 3, id="quiet: one more each reading"),
    pytest.param(1, 0.9, 1, 1, id="one core: always ours"),
]


@pytest.mark.parametrize(("cores", "foreign", "current", "expected"), BUDGET_CASES)
def test_budget_beside(cores: int, foreign: float, current: int, expected: int) -> None:
    assert budget_beside(cores, foreign, current) == expected


TWO_READINGS = [
    # (cores, others' load now, the reading before, budget now, budget after)
    pytest.param(2, 1.0, 0.0, 2, 2, id="a burst of one reading: kept"),
    pytest.param(2, 1.0, 0.9, 2, 1, id="two readings busy: taken"),
    pytest.param(2, 0.0, 1.0, 1, 1, id="one quiet reading: not yet given back"),
    pytest.param(2, 0.1, 0.2, 1, 2, id="two quiet readings: given back"),
]


@pytest.mark.parametrize(("cores", "foreign", "before", "current", "expected"), TWO_READINGS)
def test_budget_moves_on_two_readings(
    cores: int, foreign: float, before: float, current: int, expected: int
) -> None:
    assert budget_beside(cores, foreign, current, before) == expected


async def test_the_loop_shrinks_the_budget_and_a_waiting_job_starts_when_it_grows() -> None:
    voice, ear = ModelId("tts"), ModelId("ear")
    s = Scheduler(
        slots_for=lambda _: 1,
        max_queue=8,
        queue_timeout=5,
        cpu_cores=2,
        threads_for=lambda model: choices(1),
    )
    # Another program keeps a core busy for ten readings, then the machine is quiet.
    readings = iter(
        [reading(0, 0, 0)]
        + [reading(150 * i, 200 * i, 50 * i) for i in range(1, 11)]
        + [reading(1500 + 50 * i, 2000 + 200 * i, 500 + 50 * i) for i in range(1, 100)]
    )
    seen = MachineLoad()
    follow = asyncio.create_task(follow_forever(s, 2, lambda: next(readings), seen, every=0.01))
    try:
        for _ in range(100):
            if s.cpu().cores == 1:
                break
            await asyncio.sleep(0.005)
        assert s.cpu().cores == 1 and seen.foreign == pytest.approx(1.0)
        # One core is ours: a second one-thread job waits for it, or for the machine.
        async with s.slot(voice, UserId("ann")), s.ticket(ear, UserId("bob")) as waiting:
            assert not waiting.granted
            async for _ in waiting.wait():
                pass
            assert s.cpu().cores == 2 and seen.foreign == 0.0
    finally:
        follow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await follow


def test_reading_a_proc_folder(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(STAT)
    for pid, text in {
        "42": "42 (iaforall) S 1 42 42 0 -1 0 0 0 0 0 100 20 0 0 20 0 3 0 1 0 0",
        "43": "43 (worker) S 42 42 42 0 -1 0 0 0 0 0 300 0 0 0 20 0 3 0 1 0 0",
        "50": "50 (yes) R 1 50 50 0 -1 0 0 0 0 0 999 0 0 0 20 0 1 0 1 0 0",
    }.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(text)
    (tmp_path / "self").mkdir()  # not a process
    assert read_machine(42, {0, 1}, tmp_path) == Reading(400, 1000, 420, 2)


def test_reading_this_machine() -> None:
    cpus = os.sched_getaffinity(0)
    found = read_machine(os.getpid(), cpus)
    assert found.cores == len(cpus) and 0 <= found.busy <= found.total and found.ours > 0
