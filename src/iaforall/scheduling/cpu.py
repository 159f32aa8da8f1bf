"""The CPU budget: how many threads a job may start with now, as pure functions over explicit
state (the scheduler, scheduling/loop.py, applies them).

llama.cpp's threads spin-wait for each other: when more threads want the cores than there are
cores, throughput does not halve, it collapses. So every job declares the threads it keeps busy
(a chat model: its worker's threads; Whisper: its CTranslate2 threads; a voice: one; OCR:
onnxruntime's intra-op threads; the sentence encoder: its threads), and a job starts only when
the threads in use and its own fit the budget (`IAFORALL_CPU_CORES`). Two rules keep that simple:

- the jobs of one model share its engine's threads (llama.cpp decodes its busy slots in one
  batch; every other runtime runs one job at a time): a model's threads are held once, from its
  first running job to its last;
- a job larger than the whole budget runs alone, when nothing else runs: it waits, never is
  refused forever.

Some runtimes can also run a job with fewer threads (Whisper: a second copy of the model loaded
with fewer). `threads_to_start` decides, from the measured relative times, whether starting now
with the threads that are free ends sooner than waiting for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from iaforall.core.types import ModelId


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    """A way to run a job: with `threads` threads, in `time` x the time it takes with its most
    threads (1.0 for those; for Whisper on one thread instead of two, about 0.9 to 1.6)."""

    threads: int
    time: float = 1.0


def scaled(threads: int, exponent: float) -> tuple[ThreadChoice, ...]:
    """Each fewer count than `threads`, for a runtime whose time grows as (threads / k) **
    `exponent` on k threads (llama.cpp's decode: 0.9, from 121-128 tok/s on 2 threads and 68
    on 1, measured on this 2-core machine)."""
    return tuple(ThreadChoice(k, (threads / k) ** exponent) for k in range(threads - 1, 0, -1))


def choices(threads: int, fewer: Sequence[ThreadChoice] = ()) -> tuple[ThreadChoice, ...]:
    """A job's ways to run, most threads first: its own count, then the fewer it allows."""
    most = ThreadChoice(max(0, threads), 1.0)
    rest = sorted((c for c in fewer if 0 < c.threads < most.threads), key=lambda c: -c.threads)
    return (most, *rest)


@dataclass(frozen=True, slots=True)
class CpuLoad:
    """The budget at one moment: `cores` the scheduler may fill (0: no budget), and the
    threads each model running now holds."""

    cores: int
    held: Mapping[ModelId, int] = field(default_factory=dict)

    @property
    def in_use(self) -> int:
        return sum(self.held.values())

    @property
    def free(self) -> int:
        return max(0, self.cores - self.in_use)


def share(cores: int, active: Mapping[ModelId, Sequence[ThreadChoice]]) -> dict[ModelId, int]:
    """The most threads each of the models with work now or lately (`active`: each one's
    ways) should start with, so that they run side by side instead of taking turns.

    The models with one way only (a voice, the document reader, a one-thread encoder) keep
    it; those that can shrink split the cores these leave, evenly, each on its largest way
    within its share (its smallest when none is left). Taking turns, each job runs alone at
    its best speed: the machine does one job's worth of work per unit of time. Side by side
    it does the sum of 1 / time of each one's way: more than 1 when the runtimes scale worse
    than linearly (Whisper on 1 thread of 2 takes 0.9-1.6 x its time; llama.cpp about 1.87 x).
    So when they all fit, the split is made only if that sum is more than 1; when they do
    not (three on two cores), it is made anyway, and the jobs that do not fit start when a
    core is free: else a chat would take all the cores between two stages of an ingestion
    and its worker restart back and forth (measured: two restarts of a second each in a 15 s
    window)."""
    most = {m: ways[0].threads for m, ways in active.items() if ways}
    if cores <= 0 or len(most) < 2:
        return most
    fixed = sum(ways[0].threads for ways in active.values() if len(ways) == 1)
    shrinking = {m: ways for m, ways in active.items() if len(ways) > 1}
    if not shrinking:
        return most
    each = max(1, (cores - fixed) // len(shrinking))
    picked = {
        m: next((w for w in ways if w.threads <= each), ways[-1]) for m, ways in shrinking.items()
    }
    if fixed + sum(w.threads for w in picked.values()) <= cores:
        done = len(most) - len(shrinking) + sum(1.0 / max(w.time, 1e-9) for w in picked.values())
        if done <= 1.0:  # taking turns does more
            return most
    return {**most, **{m: w.threads for m, w in picked.items()}}


def threads_to_start(
    load: CpuLoad,
    model: ModelId,
    ways: Sequence[ThreadChoice],
    *,
    run_s: float = 0.0,
    wait_s: float = 0.0,
    cap: int = 0,
) -> int | None:
    """The threads a job on `model` starts with now, or None: it waits for cores.

    `ways` are the job's choices (`choices`), most threads first; `cap` (0: none) the most it
    should take so that other models' work runs beside it (`share`); `run_s` is about how long it
    takes with its most threads, `wait_s` how long until they are all free. Fewer threads are
    taken only when the job then ends sooner than if it waited (`run_s x time < wait_s +
    run_s`); the next job in line is no worse off for it, since the cores it needs free up when
    this one ends, which is then sooner too.
    """
    if load.cores <= 0 or not ways:
        return ways[0].threads if ways else 0
    if model in load.held:  # its engine's threads are already counted
        return load.held[model]
    if cap > 0 and any(w.threads <= cap for w in ways):
        ways = [w for w in ways if w.threads <= cap]
    most = ways[0]
    if most.threads <= load.free:
        return most.threads
    fitting = [w for w in ways if w.threads <= load.free]
    best = min(fitting, key=lambda w: (w.time, -w.threads), default=None)
    if load.in_use == 0:  # larger than the whole budget: as many as fit, else it runs alone
        return most.threads if best is None else best.threads
    if best is None:
        return None
    return best.threads if run_s * best.time < wait_s + run_s else None


def seconds_until_free(
    cores: int, running: Sequence[tuple[int, float]], threads: int, *, free_now: int | None = None
) -> float:
    """How long until `threads` threads are free, when the jobs `running` ((threads held,
    seconds left) each) end in turn; 0 when they are free now, and the time the last one ends
    when the job is larger than the budget (it runs alone)."""
    in_use = sum(t for t, _ in running)
    free = cores - in_use if free_now is None else free_now
    if threads <= free:
        return 0.0
    at = 0.0
    for held, left in sorted(running, key=lambda r: r[1]):
        free += held
        at = max(at, left)
        if threads <= free:
            return at
    return at
