"""The eviction policy, table-driven: which idle models make room, least recently used first."""

from __future__ import annotations

import pytest

from iaforall.engines.budget import Candidate, budget_bytes, kv_cache_bytes, plan


def c(model: str, size: int, last_used: float, busy: bool = False) -> Candidate:
    return Candidate(model, size, busy, last_used)


CASES = [
    pytest.param([], 50, 100, [], id="empty, fits"),
    pytest.param([], 150, 100, None, id="empty, larger than the budget"),
    pytest.param([c("a", 40, 1)], 50, 100, [], id="fits beside"),
    pytest.param([c("a", 40, 1)], 60, 100, [], id="fits exactly"),
    pytest.param([c("a", 40, 1), c("b", 40, 2)], 50, 100, ["a"], id="least recently used goes"),
    pytest.param([c("a", 40, 2), c("b", 40, 1)], 50, 100, ["b"], id="order by use, not by name"),
    pytest.param(
        [c("a", 40, 1, busy=True), c("b", 40, 2)], 50, 100, ["b"], id="busy skipped for newer"
    ),
    pytest.param(
        [c("a", 40, 1, busy=True), c("b", 40, 2, busy=True)], 50, 100, None, id="all busy: wait"
    ),
    pytest.param(
        [c("a", 30, 1), c("b", 30, 2), c("c", 30, 3)], 90, 100, ["a", "b", "c"], id="all go"
    ),
    pytest.param(
        [c("a", 30, 1), c("b", 30, 2), c("c", 30, 3)], 60, 100, ["a", "b"], id="as few as needed"
    ),
    pytest.param(
        [c("a", 10, 1), c("b", 60, 2, busy=True), c("c", 10, 3)],
        50,
        100,
        None,
        id="idle ones not enough",
    ),
    pytest.param([c("a", 120, 1)], 10, 100, ["a"], id="already over (budget lowered)"),
]


@pytest.mark.parametrize(("residents", "need", "budget", "victims"), CASES)
def test_plan(
    residents: list[Candidate], need: int, budget: int, victims: list[str] | None
) -> None:
    assert plan(residents, need, budget) == victims


def test_plan_never_picks_a_busy_model() -> None:
    residents = [c(str(i), 10, i, busy=i % 2 == 0) for i in range(10)]
    for need in range(0, 101, 5):
        victims = plan(residents, need, 100) or []
        assert all(int(v) % 2 == 1 for v in victims)


def test_budget_setting_and_default() -> None:
    assert budget_bytes(512) == 512 * 1024 * 1024
    assert budget_bytes(0) > 0  # half the physical RAM


def test_kv_cache_from_the_header() -> None:
    fields = {
        "general.architecture": "qwen2",
        "qwen2.block_count": 24,
        "qwen2.embedding_length": 896,
        "qwen2.attention.head_count": 14,
        "qwen2.attention.head_count_kv": 2,
    }
    # 2 (K and V) x 24 layers x 128 (896 x 2/14) x 2 bytes = 12 KiB per token
    assert kv_cache_bytes(fields, 1000) == 12288 * 1000
    assert kv_cache_bytes({"general.architecture": "x"}, 1000) == 0
