"""The scheduling decision, table-driven: one pick, then many picks in a row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pytest

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.policy import (
    Ledger,
    Policy,
    Waiting,
    charge,
    expected_waits,
    forget_idle,
    pick_next,
    place_to_give_up,
    queue_order,
    settle,
    start_tags,
    token_cost,
)

A, B = ModelId("a"), ModelId("b")
ANN, BOB, CAT = UserId("ann"), UserId("bob"), UserId("cat")


def w(seq: int, model: ModelId, user: UserId, cost: float = 100, weight: float = 1.0) -> Waiting:
    return Waiting(seq, model, user, cost, weight)


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


# The ledger decides: who has been served how much (virtual finish = service / weight).
LEDGER_CASES = [
    pytest.param(
        [w(i, A, ANN) for i in range(100)] + [w(100, A, BOB)],
        Ledger(1000, {ANN: 1100}),
        "fair",
        100,
        id="a flooder with 100 queued does not pass a newcomer",
    ),
    pytest.param(
        [w(i, A, ANN) for i in range(100)] + [w(100, A, BOB)],
        Ledger(1000, {ANN: 1100}),
        "fifo",
        0,
        id="fifo: the newcomer waits behind the flood",
    ),
    pytest.param(
        [w(0, A, ANN), w(1, A, BOB)],
        Ledger(0, {ANN: 50, BOB: 60}),
        "fair",
        0,
        id="the one served less goes first",
    ),
    pytest.param(
        [w(0, A, ANN), w(1, A, BOB)],
        Ledger(5000, {ANN: 5050, BOB: 10}),
        "fair",
        1,
        id="an idle user's old finish counts as now, not as credit",
    ),
    pytest.param(
        [w(0, A, ANN), w(1, A, BOB)],
        Ledger(5000, {ANN: 5001, BOB: 10}),
        "fair",
        1,
        id="yet the returning user is first in line again",
    ),
    pytest.param(
        [w(0, A, ANN, cost=100, weight=2), w(1, A, ANN, weight=2), w(2, A, BOB)],
        Ledger(0, {ANN: 50, BOB: 100}),
        "fair",
        0,
        id="weight 2: ann's second request starts at the same time as bob's first",
    ),
    pytest.param(
        [w(7, A, ANN), w(3, A, ANN), w(9, A, BOB)],
        Ledger(0, {BOB: 500}),
        "fair",
        1,
        id="fifo within one user",
    ),
]


@pytest.mark.parametrize(("waiting", "ledger", "policy", "expected"), LEDGER_CASES)
def test_pick_next_with_ledger(
    waiting: list[Waiting], ledger: Ledger, policy: Policy, expected: int
) -> None:
    chosen = pick_next(waiting, {A: 1}, {}, ledger=ledger, policy=policy)
    assert chosen == waiting[expected]


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


@pytest.mark.parametrize("policy", ["fair", "fifo"])
@pytest.mark.parametrize(("waiting", "active", "limit", "expected"), ACTIVE_CASES)
def test_active_models_limit(
    waiting: list[Waiting], active: set[ModelId], limit: int, expected: int | None, policy: Policy
) -> None:
    chosen = pick_next(
        waiting,
        {A: 1, B: 1},
        {},
        policy=policy,
        active_models=active,
        max_active_models=limit,
    )
    assert chosen == (None if expected is None else waiting[expected])


# -- many picks in a row: one slot, each request served to its end before the next ----------


def serve(
    waiting: Iterable[Waiting],
    picks: int,
    *,
    ledger: Ledger | None = None,
    policy: Policy = "fair",
    arrivals: dict[int, list[Waiting]] | None = None,
) -> list[Waiting]:
    """Who is served, in order, when `picks` requests run one after the other."""
    queue, state, served = list(waiting), ledger or Ledger(), []
    for step in range(picks):
        queue += (arrivals or {}).get(step, [])
        chosen = pick_next(queue, {A: 1}, {}, ledger=state, policy=policy)
        if chosen is None:
            break
        queue.remove(chosen)
        state = charge(state, chosen)
        served.append(chosen)
    return served


def flood(user: UserId, n: int, first_seq: int = 0, **kw: float) -> list[Waiting]:
    return [w(first_seq + i, A, user, **kw) for i in range(n)]


def test_a_newcomer_is_served_next_even_behind_a_flood_of_100() -> None:
    arrivals = {10: [w(1000, A, BOB)]}
    served = serve(flood(ANN, 100), 20, arrivals=arrivals)
    assert served[10].user == BOB  # the very next start after it arrived
    fifo = serve(flood(ANN, 100), 101, arrivals=arrivals, policy="fifo")
    assert fifo.index(w(1000, A, BOB)) == 100  # FIFO: behind all of Ann's


STARVATION_CASES = [
    # (weights, picks, the least each user gets)
    pytest.param({ANN: 1, BOB: 1}, 100, {ANN: 49, BOB: 49}, id="equal weights share equally"),
    pytest.param({ANN: 2, BOB: 1}, 90, {ANN: 59, BOB: 29}, id="2:1 weights give 2:1 service"),
    pytest.param({ANN: 1, BOB: 0.1}, 110, {ANN: 99, BOB: 9}, id="a low weight still progresses"),
    pytest.param(
        {ANN: 1, BOB: 1, CAT: 1}, 99, {ANN: 32, BOB: 32, CAT: 32}, id="three users, a third each"
    ),
]


@pytest.mark.parametrize(("weights", "picks", "least"), STARVATION_CASES)
def test_service_follows_weights_when_everyone_floods(
    weights: dict[UserId, float], picks: int, least: dict[UserId, int]
) -> None:
    waiting = [
        w(i * len(weights) + k, A, user, weight=weight)
        for i in range(200)
        for k, (user, weight) in enumerate(weights.items())
    ]
    got = Counter(s.user for s in serve(waiting, picks))
    assert all(got[user] >= n for user, n in least.items()), got


def test_service_is_counted_in_tokens_not_requests() -> None:
    """Bob's requests are 4 times smaller: he gets 4 times as many, the same tokens."""
    waiting = flood(ANN, 50, cost=400) + flood(BOB, 200, first_seq=50, cost=100)
    served = serve(waiting, 100)
    tokens = Counter[UserId]()
    for s in served:
        tokens[s.user] += int(s.cost)
    assert abs(tokens[ANN] - tokens[BOB]) <= 400, tokens


def test_fifo_within_each_user() -> None:
    waiting = flood(ANN, 20) + flood(BOB, 20, first_seq=20)
    served = serve(waiting, 40)
    for user in (ANN, BOB):
        seqs = [s.seq for s in served if s.user == user]
        assert seqs == sorted(seqs)


def test_a_user_returning_after_idle_does_not_monopolise() -> None:
    """Ann is served alone for a long time, Bob was served long ago: when he comes back with
    many requests, he gets his share from now on, not the whole machine to catch up."""
    served = serve(flood(ANN, 300), 100, ledger=Ledger(0, {BOB: 0}))
    assert {s.user for s in served} == {ANN}
    state = Ledger(0, {BOB: 0})
    for s in served:
        state = charge(state, s)
    rest = [x for x in flood(ANN, 300) if x not in served]
    after = serve(rest + flood(BOB, 100, first_seq=1000), 40, ledger=state)
    got = Counter(s.user for s in after)
    assert 19 <= got[BOB] <= 21, got


def test_settling_refunds_what_was_not_used() -> None:
    """Ann's requests were estimated at 100 tokens but used 10: she is charged 10, and gets
    her share of tokens, so more requests."""
    state = Ledger()
    picked = Counter[UserId]()
    queue = flood(ANN, 200) + flood(BOB, 200, first_seq=200)
    for _ in range(100):
        chosen = pick_next(queue, {A: 1}, {}, ledger=state)
        assert chosen is not None
        queue.remove(chosen)
        state = charge(state, chosen)
        used = 10 if chosen.user == ANN else 100
        state = settle(state, chosen.user, estimated=chosen.cost, used=used, weight=1)
        picked[chosen.user] += 1
    assert picked[ANN] >= 85, picked


# -- the helpers, table-driven ------------------------------------------------------------------


def test_start_tags_and_order() -> None:
    waiting = [w(0, A, ANN), w(1, A, ANN), w(2, A, BOB, weight=2), w(3, A, BOB, weight=2)]
    tags = start_tags(waiting, Ledger(10, {ANN: 30}))
    assert [tags[x] for x in waiting] == [30, 130, 10, 60]
    order = queue_order(waiting, {}, Ledger(10, {ANN: 30}))
    assert [x.seq for x in order] == [2, 0, 3, 1]
    assert [x.seq for x in queue_order(waiting, {}, policy="fifo")] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("ledger", "present", "expected"),
    [
        pytest.param(Ledger(10, {ANN: 5}), {BOB}, Ledger(10, {}), id="behind the clock: dropped"),
        pytest.param(Ledger(10, {ANN: 50}), {BOB}, Ledger(10, {ANN: 50}), id="ahead: kept"),
        pytest.param(Ledger(10, {ANN: 5}), {ANN}, Ledger(10, {ANN: 5}), id="present: kept"),
        pytest.param(Ledger(10, {ANN: 50}), set(), Ledger(50, {}), id="all idle: clock moves"),
    ],
)
def test_forget_idle(ledger: Ledger, present: set[UserId], expected: Ledger) -> None:
    assert forget_idle(ledger, present) == expected


def test_charge_and_settle() -> None:
    state = charge(Ledger(100, {ANN: 40}), w(0, A, ANN, cost=60, weight=2))
    assert state == Ledger(100, {ANN: 130})  # starts at now (100), not at 40
    assert settle(state, ANN, estimated=60, used=20, weight=2) == Ledger(100, {ANN: 110})
    assert settle(state, BOB, estimated=60, used=20, weight=1) == state
    assert token_cost(400, 100) == 200 and token_cost(0, 0) == 1


@pytest.mark.parametrize(
    ("order", "running_left", "slots", "expected"),
    [
        pytest.param([10], [], 1, [0], id="a free slot: no wait"),
        pytest.param([10, 10], [5], 1, [0.5, 1.5], id="one slot: one after the other"),
        pytest.param([10, 10, 10], [5, 20], 2, [0.5, 1.5, 2.0], id="two slots, earliest first"),
        pytest.param([10], [-3], 1, [0], id="overrunning its estimate: about now"),
    ],
)
def test_expected_waits(
    order: list[float], running_left: list[float], slots: int, expected: list[float]
) -> None:
    waits = expected_waits(order, running_left, slots=slots, seconds_per_token=0.1)
    assert waits == pytest.approx(expected)


# A full line, and someone arrives: whose place (by index) is given up for them, if any.
GIVE_UP_CASES = [
    pytest.param([], ANN, None, id="an empty line gives up nothing"),
    pytest.param([w(0, A, ANN), w(1, A, ANN)], ANN, None, id="the flooder asks again: refused"),
    pytest.param([w(0, A, ANN), w(1, A, ANN)], BOB, 1, id="a newcomer takes the newest"),
    pytest.param([w(0, A, ANN), w(1, A, BOB)], CAT, None, id="one each: nobody has more"),
    pytest.param(
        [w(0, A, ANN), w(1, A, ANN), w(2, A, BOB)], BOB, None, id="2 against 1: only a swap"
    ),
    pytest.param(
        [w(0, A, ANN), w(1, A, ANN), w(2, A, BOB)], CAT, 1, id="2 against 0: Ann gives one"
    ),
    pytest.param(
        [w(0, A, ANN), w(1, A, BOB), w(2, A, ANN), w(3, A, BOB)],
        CAT,
        3,
        id="a tie: the newest of the heaviest",
    ),
    pytest.param(
        [w(0, A, ANN), w(1, B, ANN), w(2, A, ANN)], BOB, 2, id="across models, the newest"
    ),
]


@pytest.mark.parametrize(("waiting", "user", "expected"), GIVE_UP_CASES)
def test_place_to_give_up(waiting: list[Waiting], user: UserId, expected: int | None) -> None:
    chosen = place_to_give_up(waiting, user)
    assert chosen == (None if expected is None else waiting[expected])
