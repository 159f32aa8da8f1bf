"""When to pause a running generation so that someone else gets a turn: a pure function.

Fair queuing (policy.py) decides who starts when a slot frees, but a slot frees only when an
answer ends: a person who asks one question behind a flood still waits for one of the
flooder's answers to finish. Preemption closes that gap. When someone with nothing running is
waiting for a model, no slot of it is free, and someone holding its slots is above their fair
share (the slots divided among everyone running or waiting there, by weight), the generation of
the person most over their share is paused: the engine keeps its prefix in its prompt cache,
and it resumes when its turn comes again, so that its client sees only a delay.

A generation that has just started or resumed is left to run `QUANTUM_TOKENS` first: when
people outnumber the slots, they take turns in slices of that many tokens (each pause costs a
resume: a few milliseconds of tokenizing and one token evaluated again) instead of pausing each
other at every token.

A generation that cannot be resumed identically (tools, grammars, penalties: see the engine's
`pausable`) is never chosen, and a model with a pause already under way is left alone until
that slot is free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.policy import Ledger, Waiting

QUANTUM_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Running:
    """A generation holding a slot."""

    seq: int  # arrival order
    model: ModelId
    user: UserId
    weight: float = 1.0
    pausable: bool = True
    pausing: bool = False  # asked to pause, not yet stopped
    tokens: int = QUANTUM_TOKENS  # generated since its slot was (last) granted


def fair_shares(
    model: ModelId, waiting: Sequence[Waiting], running: Sequence[Running], slots: int
) -> dict[UserId, float]:
    """Each person's share of `model`'s slots: the slots divided among everyone running or
    waiting there, in proportion to their weights."""
    weights: dict[UserId, float] = {}
    for r in running:
        if r.model == model:
            weights[r.user] = max(weights.get(r.user, 0.0), r.weight)
    for w in waiting:
        if w.model == model:
            weights[w.user] = max(weights.get(w.user, 0.0), w.weight)
    total = sum(weights.values())
    if total <= 0:
        return {}
    return {user: slots * weight / total for user, weight in weights.items()}


def to_pause(
    waiting: Sequence[Waiting],
    running: Sequence[Running],
    slots_for: Mapping[ModelId, int],
    ledger: Ledger | None = None,
    *,
    quantum: int = QUANTUM_TOKENS,
) -> Running | None:
    """The generation to pause now, or None.

    Someone waits with nothing running on the model, no slot of it is free, and a holder is
    above their share: the newest generation of the person most over their share (ties: the
    one furthest ahead in service, `ledger`) that has run `quantum` tokens since its slot was
    granted is paused. Their oldest answers keep going, and the paused one resumes before their
    newer requests (it keeps its place in their order).
    """
    ledger = ledger or Ledger()
    for model in sorted({w.model for w in waiting}):
        holders = [r for r in running if r.model == model]
        if any(r.pausing for r in holders) or len(holders) < slots_for.get(model, 0):
            continue  # a slot is free, or is being freed
        users_running = {r.user for r in holders}
        if not any(w.model == model and w.user not in users_running for w in waiting):
            continue  # everyone waiting already has a generation going
        shares = fair_shares(model, waiting, holders, slots_for.get(model, 0))
        count: dict[UserId, int] = {}
        for r in holders:
            count[r.user] = count.get(r.user, 0) + 1
        candidates = [
            r
            for r in holders
            if r.pausable and r.tokens >= quantum and count[r.user] > shares.get(r.user, 0.0)
        ]
        if not candidates:
            continue  # those above their share have just had their turn, or cannot pause
        return max(
            candidates,
            key=lambda r: (count[r.user] - shares[r.user], ledger.start_of(r.user), r.seq),
        )
    return None
