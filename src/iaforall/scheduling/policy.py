"""The scheduling decision, as pure functions over explicit state.

Weighted fair queuing on tokens (start-time fair queuing, computed lazily): every user has a
virtual finish time, the service they have been given so far divided by their weight. A request
may start at `max(now, its user's finish)`; the smallest start wins, and starting it moves its
user's finish on by `cost / weight`. So

- a user who floods the server queues behind their own requests, not in front of others': a
  newcomer starts at `now`, before the flooder's next request;
- weights 2:1 give 2:1 service while both users wait;
- a user returning after idling starts at `now`, not at their old finish: idle time banks no
  credit, so nobody can come back and monopolise the engines;
- one user's requests keep their arrival order.

Costs are in tokens (`token_cost`): an estimate when a request starts, settled against what it
really used when it ends. FIFO (arrival order alone) is kept for comparison in the benchmark.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

from iaforall.core.types import ModelId, UserId

Policy = Literal["fair", "fifo"]

DEFAULT_MAX_TOKENS = 256  # what a request without max_tokens is assumed to ask for
PROMPT_TOKEN_COST = 0.25  # a prompt token costs a fraction of a generated one (batched prefill)


def token_cost(prompt_tokens: float, completion_tokens: float) -> float:
    """The work of a request, in generated-token equivalents."""
    return max(1.0, completion_tokens + PROMPT_TOKEN_COST * prompt_tokens)


@dataclass(frozen=True, slots=True)
class Waiting:
    seq: int  # arrival order
    model: ModelId
    user: UserId
    cost: float = float(DEFAULT_MAX_TOKENS)  # estimated tokens (token_cost)
    weight: float = 1.0  # the user's share


@dataclass(frozen=True, slots=True)
class Ledger:
    """Service given so far: the virtual clock and each user's virtual finish time.

    Treat as immutable: the functions below return new ledgers.
    """

    now: float = 0.0
    finish: Mapping[UserId, float] = field(default_factory=dict)

    def start_of(self, user: UserId) -> float:
        return max(self.now, self.finish.get(user, self.now))


def start_tags(waiting: Sequence[Waiting], ledger: Ledger) -> dict[Waiting, float]:
    """The virtual time at which each waiting request would start if all were served in turn:
    a user's requests, oldest first, one after the other from the user's start."""
    tags: dict[Waiting, float] = {}
    next_start: dict[UserId, float] = {}
    for w in sorted(waiting, key=lambda w: w.seq):
        start = next_start.get(w.user, ledger.start_of(w.user))
        tags[w] = start
        next_start[w.user] = start + w.cost / _positive(w.weight)
    return tags


def queue_order(
    waiting: Sequence[Waiting],
    running_by_user: Mapping[UserId, int],
    ledger: Ledger | None = None,
    *,
    policy: Policy = "fair",
) -> list[Waiting]:
    """Everyone waiting, in the order they would be served if slots freed one by one."""
    if policy == "fifo":
        return sorted(waiting, key=lambda w: w.seq)
    tags = start_tags(waiting, ledger or Ledger())
    # Ties (fresh users all start at `now`): fewer requests running first, then the oldest.
    return sorted(waiting, key=lambda w: (tags[w], running_by_user.get(w.user, 0), w.seq))


def pick_next(
    waiting: Sequence[Waiting],
    free_slots: Mapping[ModelId, int],
    running_by_user: Mapping[UserId, int],
    *,
    ledger: Ledger | None = None,
    policy: Policy = "fair",
    active_models: AbstractSet[ModelId] = frozenset(),
    max_active_models: int = 0,
    start_threads: Callable[[Waiting], int | None] | None = None,
) -> Waiting | None:
    """The request to start now, or None when none can start.

    `active_models` are those generating now; with `max_active_models` > 0, a request for
    another model waits until fewer are active: each model uses every core it is given, and on
    a small machine two generating at once make both crawl (llama.cpp threads wait on each
    other). `start_threads` is the CPU budget (scheduling/cpu.py): the threads a request would
    start with now, None when it must wait for cores.
    """

    def held_back(model: ModelId) -> bool:
        return (
            max_active_models > 0
            and model not in active_models
            and len(active_models) >= max_active_models
        )

    def waits_for_cores(w: Waiting) -> bool:
        return start_threads is not None and start_threads(w) is None

    # A request held back for its model's turn, or for cores, is not overtaken by newer ones:
    # those running drain, then it starts. Its wait stays bounded.
    oldest_held = min(
        (
            w.seq
            for w in waiting
            if held_back(w.model) or (free_slots.get(w.model, 0) > 0 and waits_for_cores(w))
        ),
        default=None,
    )
    for w in queue_order(waiting, running_by_user, ledger, policy=policy):
        if (
            free_slots.get(w.model, 0) > 0
            and not held_back(w.model)
            and (oldest_held is None or w.seq < oldest_held)
            and not waits_for_cores(w)
        ):
            return w
    return None


def place_to_give_up(waiting: Sequence[Waiting], user: UserId) -> Waiting | None:
    """When the line is full and `user` arrives: the place given up for them, the newest of
    the person holding the most places, if that person would still hold more than `user`
    then; None: the newcomer is refused. So one person's flood cannot lock everyone else out
    of a shared server, and a line that is full of one person's requests serves others too."""
    counts: dict[UserId, int] = {}
    for entry in waiting:
        counts[entry.user] = counts.get(entry.user, 0) + 1
    if not counts:
        return None
    most = max(counts.values())
    if most < counts.get(user, 0) + 2:  # giving up a place would only swap who is refused
        return None
    return max((e for e in waiting if counts[e.user] == most), key=lambda e: e.seq)


def charge(ledger: Ledger, started: Waiting) -> Ledger:
    """The ledger once `started` has its slot: its user pays its estimated cost."""
    start = ledger.start_of(started.user)
    finish = {**ledger.finish, started.user: start + started.cost / _positive(started.weight)}
    return Ledger(max(ledger.now, start), finish)


def settle(ledger: Ledger, user: UserId, *, estimated: float, used: float, weight: float) -> Ledger:
    """The ledger once a request ended: its user pays what it really used, not the estimate."""
    if user not in ledger.finish or used == estimated:
        return ledger
    finish = {**ledger.finish, user: ledger.finish[user] + (used - estimated) / _positive(weight)}
    return Ledger(ledger.now, finish)


def forget_idle(ledger: Ledger, present: AbstractSet[UserId]) -> Ledger:
    """Drop users with nothing waiting or running whose finish is behind the clock: they would
    start at `now` anyway. With nobody present, the clock moves to the last finish."""
    if not present:
        return Ledger(max([ledger.now, *ledger.finish.values()]), {})
    kept = {u: f for u, f in ledger.finish.items() if u in present or f > ledger.now}
    return ledger if len(kept) == len(ledger.finish) else Ledger(ledger.now, kept)


def expected_waits(
    order: Sequence[float],
    running_left: Sequence[float],
    *,
    slots: int,
    seconds_per_token: float,
) -> list[float]:
    """Seconds until each of `order` (the costs of the requests waiting for one model, in
    serving order) gets a slot: each slot serves its requests one after the other at
    `seconds_per_token`; `running_left` are the tokens the running ones still have to make."""
    free_at = [max(0.0, left) * seconds_per_token for left in running_left]
    free_at += [0.0] * max(0, slots - len(free_at))
    free_at = sorted(free_at)[: max(1, slots)] or [0.0]
    heapq.heapify(free_at)
    waits = []
    for cost in order:
        at = heapq.heappop(free_at)
        waits.append(at)
        heapq.heappush(free_at, at + cost * seconds_per_token)
    return waits


def _positive(weight: float) -> float:
    return weight if weight > 0 else 1e-6
