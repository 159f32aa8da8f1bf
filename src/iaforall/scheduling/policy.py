"""The scheduling decision, as a pure function over explicit state.

Today: among the waiting requests whose model has a free slot, serve the user who has the
fewest requests running, oldest request first. One user holding every slot cannot keep a
newcomer waiting behind their queued requests. Weighted fair queuing (issue: people) replaces
the ordering key, not the shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from iaforall.core.types import ModelId, UserId


@dataclass(frozen=True, slots=True)
class Waiting:
    seq: int  # arrival order
    model: ModelId
    user: UserId


def pick_next(
    waiting: Sequence[Waiting],
    free_slots: Mapping[ModelId, int],
    running_by_user: Mapping[UserId, int],
    *,
    active_models: AbstractSet[ModelId] = frozenset(),
    max_active_models: int = 0,
) -> Waiting | None:
    """The request to start now, or None when none can start.

    `active_models` are those generating now; with `max_active_models` > 0, a request for
    another model waits until fewer are active: each model uses every core it is given, and on
    a small machine two generating at once make both crawl (llama.cpp threads wait on each
    other).
    """

    def held_back(model: ModelId) -> bool:
        return (
            max_active_models > 0
            and model not in active_models
            and len(active_models) >= max_active_models
        )

    # A request held back for its model's turn is not overtaken by newer ones for the active
    # models: those drain, then its model starts. Its wait stays bounded.
    oldest_held = min((w.seq for w in waiting if held_back(w.model)), default=None)
    candidates = [
        w
        for w in waiting
        if free_slots.get(w.model, 0) > 0
        and not held_back(w.model)
        and (oldest_held is None or w.seq < oldest_held)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda w: (running_by_user.get(w.user, 0), w.seq))
