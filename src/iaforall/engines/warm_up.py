"""Warming the voice at start: Whisper's models loaded and piper's voice started in the
background, so the first spoken question costs what the next ones do.

Measured on 2 cores: loading Whisper base takes ~0.5 s and piper's first line ~0.7 s (then
0.14 s), paid by the first person who speaks. Warming happens after the default chat model is
loaded, and only what fits beside the resident models in the memory budget (and in the memory
the machine has free): a warm runtime is a convenience, never a reason to unload a chat model.
The choice is pure (`choose`), so it is tested as a table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from iaforall.core.errors import IAForAllError
from iaforall.engines.runtime import Runtimes

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@runtime_checkable
class Warmable(Protocol):
    """A runtime that can be made ready ahead of its first job."""

    def warm_cost(self) -> int:
        """Bytes of memory it keeps once warm (an estimate made before warming)."""

    async def warm(self) -> None:
        """Load what the first job would load; raises IAForAllError when it cannot."""


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    cost: int  # bytes it keeps once warm


def choose(candidates: Sequence[Candidate], room: int) -> list[str]:
    """The runtimes to warm, in their order, each only if it fits in the room the ones before
    it left; one that does not fit is skipped, a smaller one after it may still fit."""
    chosen: list[str] = []
    for candidate in candidates:
        if candidate.cost <= room:
            chosen.append(candidate.name)
            room -= candidate.cost
    return chosen


def available_memory() -> int:
    """Bytes the kernel says could be used now without swapping (MemAvailable); 0: unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def room(budget: int, used: int, available: int) -> int:
    """Memory warming may take: what the budget leaves beside the resident models (0: no
    budget), and never more than half of what the machine has free (0: unknown)."""
    limits = [budget - used] if budget else []
    if available:
        limits.append(available // 2)
    return max(0, min(limits)) if limits else 0


async def warm_up(runtimes: Runtimes, room_bytes: int) -> list[str]:
    """Warm the speech runtimes that fit in `room_bytes`, one after the other (each keeps the
    cores busy for a moment); the ones warmed, by name. A failure is logged, not raised: the
    first request will say what is wrong."""
    found: list[tuple[Candidate, Warmable]] = []
    for spec in runtimes.specs():
        if spec.kind not in ("speech_to_text", "text_to_speech"):
            continue
        made = runtimes.get(spec.model)
        if isinstance(made, Warmable):
            found.append((Candidate(spec.model, made.warm_cost()), made))
    chosen = set(choose([c for c, _ in found], room_bytes))
    warmed: list[str] = []
    for candidate, runtime in found:
        if candidate.name not in chosen:
            log.info(
                "%s is not warmed at start: its %d MiB do not fit in the memory left",
                candidate.name,
                candidate.cost // MiB,
            )
            continue
        try:
            await runtime.warm()
        except IAForAllError as exc:
            log.warning("%s could not be warmed at start: %s", candidate.name, exc.message)
            continue
        warmed.append(candidate.name)
    if warmed:
        log.info("warmed at start: %s", ", ".join(warmed))
    return warmed
