"""The scheduling decision, as a pure function over explicit state.

Today: among the waiting requests whose model has a free slot, serve the user who has the
fewest requests running, oldest request first. One user holding every slot cannot keep a
newcomer waiting behind their queued requests. Weighted fair queuing (issue: people) replaces
the ordering key, not the shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
) -> Waiting | None:
    """The request to start now, or None when none can start."""
    candidates = [w for w in waiting if free_slots.get(w.model, 0) > 0]
    if not candidates:
        return None
    return min(candidates, key=lambda w: (running_by_user.get(w.user, 0), w.seq))
