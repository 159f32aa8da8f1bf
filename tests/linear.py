"""Proof that a parser is linear in its input: its time on an adversarial input against its time
on a benign input of the same size, measured in the same run (a ratio, never a wall time).

Each is timed in a forked child, best of a few runs: a parser that backtracks for minutes makes
the test fail once it passed a generous multiple of the benign time, instead of hanging it (a
regex holds the GIL: a thread could not even be timed out).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TypeVar

Input = TypeVar("Input")

MAX_SLOWDOWN = 10.0  # generous: a linear parser is within 1-3x; a quadratic one, 100x at 1 MB
RUNS = 3
MIN_WAIT = 10.0  # seconds the adversarial run is always given (a very fast benign run is noisy)


def assert_linear(
    read: Callable[[Input], object],
    benign: Input,
    adversarial: Input,
    *,
    max_slowdown: float = MAX_SLOWDOWN,
) -> float:
    """The slowdown (adversarial / benign); fails above `max_slowdown`."""
    context = multiprocessing.get_context("fork")  # `read` may be a closure
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_time_both, args=(theirs, read, benign, adversarial))
    child.start()
    theirs.close()
    try:
        benign_seconds = _received(ours, 300.0)
        assert benign_seconds is not None, "the benign input did not finish"
        wait = max(MIN_WAIT, 2 * max_slowdown * benign_seconds * RUNS)
        adversarial_seconds = _received(ours, wait)
    finally:
        child.kill()
        child.join()
    assert adversarial_seconds is not None, (
        f"the adversarial input was still being read after {wait:.1f} s; the benign one took "
        f"{benign_seconds:.3f} s"
    )
    slowdown = adversarial_seconds / benign_seconds
    assert slowdown < max_slowdown, (
        f"adversarial {adversarial_seconds:.3f} s, benign {benign_seconds:.3f} s: "
        f"{slowdown:.1f}x slower"
    )
    return slowdown


def _received(connection: Connection, seconds: float) -> float | None:
    if not connection.poll(seconds):
        return None
    try:
        value = connection.recv()
    except EOFError:
        return None
    if isinstance(value, BaseException):
        raise value
    return float(value)


def _time_both(
    connection: Connection, read: Callable[[Input], object], benign: Input, adversarial: Input
) -> None:
    try:
        for given in (benign, adversarial):
            connection.send(min(_seconds(read, given) for _ in range(RUNS)))
    except Exception:  # sent as text: not every exception can be pickled
        connection.send(RuntimeError(traceback.format_exc()))


def _seconds(read: Callable[[Input], object], given: Input) -> float:
    start = time.perf_counter()
    read(given)
    return time.perf_counter() - start
