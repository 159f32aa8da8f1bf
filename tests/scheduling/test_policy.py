"""The scheduling decision, table-driven."""

from __future__ import annotations

import pytest

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.policy import Waiting, pick_next

A, B = ModelId("a"), ModelId("b")
ANN, BOB, CAT = UserId("ann"), UserId("bob"), UserId("cat")


def w(seq: int, model: ModelId, user: UserId) -> Waiting:
    return Waiting(seq, model, user)


CASES = [
    pytest.param([], {A: 1}, {}, None, id="nobody waiting"),
    pytest.param([w(0, A, ANN)], {A: 0}, {}, None, id="no free slot"),
    pytest.param([w(0, A, ANN)], {}, {}, None, id="model unknown to free map"),
    pytest.param([w(0, A, ANN), w(1, A, BOB)], {A: 1}, {}, 0, id="fifo among equals"),
    pytest.param(
        [w(0, A, ANN), w(1, A, ANN), w(2, A, BOB)],
        {A: 1},
        {ANN: 1},
        2,
        id="a flooding user does not pass a newcomer",
    ),
    pytest.param(
        [w(0, A, ANN), w(1, B, BOB)], {A: 0, B: 1}, {}, 1, id="skips a model with no free slot"
    ),
    pytest.param([w(5, A, ANN), w(3, A, ANN)], {A: 1}, {}, 1, id="oldest first for the same user"),
    pytest.param(
        [w(0, A, ANN), w(1, A, BOB), w(2, A, CAT)],
        {A: 2},
        {ANN: 3, BOB: 1, CAT: 1},
        1,
        id="fewest running, then oldest",
    ),
]


@pytest.mark.parametrize(("waiting", "free", "running", "expected"), CASES)
def test_pick_next(
    waiting: list[Waiting],
    free: dict[ModelId, int],
    running: dict[UserId, int],
    expected: int | None,
) -> None:
    chosen = pick_next(waiting, free, running)
    assert chosen == (None if expected is None else waiting[expected])


def test_a_user_holding_slots_yields_to_one_holding_none() -> None:
    """With two slots and Ann running one, Bob's later request starts before Ann's queued ones."""
    waiting = [w(i, A, ANN) for i in range(10)] + [w(10, A, BOB)]
    chosen = pick_next(waiting, {A: 1}, {ANN: 1})
    assert chosen is not None and chosen.user == BOB


ACTIVE_CASES = [
    pytest.param([w(0, B, BOB)], {A}, 1, None, id="another model waits while one is active"),
    pytest.param([w(0, B, BOB)], {A}, 2, 0, id="two may be active"),
    pytest.param([w(0, B, BOB)], {A}, 0, 0, id="no limit"),
    pytest.param([w(0, A, ANN), w(1, B, BOB)], {A}, 1, 0, id="the active model goes on"),
    pytest.param(
        [w(1, B, BOB), w(2, A, ANN)], {A}, 1, None, id="newer requests do not overtake a held one"
    ),
    pytest.param([w(1, B, BOB), w(2, A, ANN)], set(), 1, 0, id="its turn once nothing is active"),
]


@pytest.mark.parametrize(("waiting", "active", "limit", "expected"), ACTIVE_CASES)
def test_active_models_limit(
    waiting: list[Waiting], active: set[ModelId], limit: int, expected: int | None
) -> None:
    chosen = pick_next(waiting, {A: 1, B: 1}, {}, active_models=active, max_active_models=limit)
    assert chosen == (None if expected is None else waiting[expected])
