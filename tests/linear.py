"""Linear time, checked as a ratio measured in one run: an adversarial input against a benign
one of the same size (never a wall time: these machines are noisy)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seconds(work: Callable[[], Any], runs: int = 3) -> float:
    """The best of a few runs: what the work costs, with the least noise."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def assert_linear(
    work: Callable[[str], Any], adversarial: str, benign: str, *, bound: float = 10.0
) -> None:
    assert abs(len(adversarial) - len(benign)) <= len(benign) // 10, "inputs of the same size"
    bad = seconds(lambda: work(adversarial))
    good = seconds(lambda: work(benign))
    # a floor for the benign time: a near-instant benign run must not make noise look quadratic
    assert bad <= bound * max(good, 0.005), f"{bad:.3f} s against {good:.3f} s"
