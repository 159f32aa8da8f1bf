"""When to pause a running generation (scheduling/preempt.py), table-driven."""

from __future__ import annotations

import pytest

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.policy import Ledger, Waiting
from iaforall.scheduling.preempt import Running, fair_shares, to_pause

A, B = ModelId("a"), ModelId("b")
ANN, BOB, CAT = UserId("ann"), UserId("bob"), UserId("cat")


def w(seq: int, model: ModelId, user: UserId, weight: float = 1.0) -> Waiting:
    return Waiting(seq, model, user, 100, weight)


def r(
    seq: int,
    model: ModelId,
    user: UserId,
    *,
    weight: float = 1.0,
    pausable: bool = True,
    pausing: bool = False,
    tokens: int = 100,
) -> Running:
    return Running(seq, model, user, weight, pausable, pausing, tokens)


CASES = [
    pytest.param([], [r(0, A, ANN)], {A: 1}, None, id="nobody waiting"),
    pytest.param(
        [w(5, A, BOB)], [r(0, A, ANN), r(1, A, ANN)], {A: 2}, 1, id="newcomer: ann's newest"
    ),
    pytest.param([w(5, A, BOB)], [r(0, A, ANN)], {A: 2}, None, id="a slot is free"),
    pytest.param(
        [w(5, A, ANN)], [r(0, A, ANN), r(1, A, ANN)], {A: 2}, None, id="only the holder waits"
    ),
    pytest.param(
        [w(5, A, CAT)],
        [r(0, A, ANN), r(1, A, ANN), r(2, A, BOB)],
        {A: 3},
        1,
        id="3 slots, 3 people: ann holds 2, above her 1; bob his 1, within",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN), r(1, A, CAT)],
        {A: 2},
        1,
        id="ann and cat each hold one of two slots, above 2/3: the newest pauses",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, pausable=False), r(1, A, ANN)],
        {A: 2},
        1,
        id="a generation that cannot resume identically is never chosen",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, pausable=False), r(1, A, ANN, pausable=False)],
        {A: 2},
        None,
        id="none pausable",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, pausing=True), r(1, A, ANN)],
        {A: 2},
        None,
        id="one already pausing: its slot is about to free",
    ),
    pytest.param(
        [w(5, B, BOB)], [r(0, A, ANN), r(1, A, ANN)], {A: 2, B: 1}, None, id="other model"
    ),
    pytest.param(
        [w(5, A, BOB), w(6, A, BOB)],
        [r(0, A, ANN), r(1, A, ANN)],
        {A: 2},
        1,
        id="however many the newcomer sends, one pause at a time",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN), r(1, A, ANN), r(2, A, ANN), r(3, A, CAT), r(4, A, CAT)],
        {A: 5},
        2,
        id="the person most over their share",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, weight=4.0), r(1, A, ANN, weight=4.0)],
        {A: 2},
        1,
        id="a heavy weight still above its share when holding every slot",
    ),
    pytest.param([w(5, A, BOB)], [r(0, A, ANN)], {A: 1}, 0, id="one slot held by a flooder"),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, tokens=3), r(1, A, CAT, tokens=15)],
        {A: 2},
        None,
        id="both have just started or resumed: they run their quantum first",
    ),
    pytest.param(
        [w(5, A, BOB)],
        [r(0, A, ANN, tokens=3), r(1, A, CAT, tokens=16)],
        {A: 2},
        1,
        id="the one past its quantum",
    ),
]


@pytest.mark.parametrize(("waiting", "running", "slots", "expected"), CASES)
def test_to_pause(
    waiting: list[Waiting], running: list[Running], slots: dict[ModelId, int], expected: int | None
) -> None:
    chosen = to_pause(waiting, running, slots)
    assert (chosen.seq if chosen else None) == expected


def test_ties_go_to_the_person_furthest_ahead_in_service() -> None:
    running = [r(0, A, ANN), r(1, A, ANN), r(2, A, CAT), r(3, A, CAT)]
    waiting = [w(5, A, BOB)]
    ledger = Ledger(now=10.0, finish={ANN: 50.0, CAT: 90.0})
    chosen = to_pause(waiting, running, {A: 4}, ledger)
    assert chosen is not None and chosen.user == CAT and chosen.seq == 3
    ledger = Ledger(now=10.0, finish={ANN: 95.0, CAT: 90.0})
    chosen = to_pause(waiting, running, {A: 4}, ledger)
    assert chosen is not None and chosen.user == ANN and chosen.seq == 1


def test_shares_divide_the_slots_by_weight_among_people_present() -> None:
    shares = fair_shares(A, [w(5, A, BOB, 2.0), w(6, B, CAT)], [r(0, A, ANN)], 3)
    assert shares == {ANN: 1.0, BOB: 2.0}
