"""The scheduler: the one owner of queue and slot state.

Admission is bounded (a full queue answers "busy" at once, with a hint of when to retry,
unless the newcomer has fewer places than the person with the most: one of theirs is given up);
waiting requests are granted slots by `policy.pick_next` whenever one frees up, and only when
their threads fit the CPU budget (`cpu.threads_to_start`): the ticket says how many it got.
Each request holds a `Ticket`: its place in line (position and expected wait, updated as the
line moves, and said again every `HEARTBEAT_S` while it stays the same), then its slot.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from iaforall.core.errors import ServerBusy
from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.cpu import (
    CpuLoad,
    ThreadChoice,
    seconds_until_free,
    share,
    threads_to_start,
)
from iaforall.scheduling.policy import (
    DEFAULT_MAX_TOKENS,
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
    token_cost,
)
from iaforall.scheduling.preempt import QUANTUM_TOKENS, Running, to_pause

DEFAULT_SECONDS_PER_TOKEN = 0.05  # per slot, until a model's own speed is measured
_SPEED_MEMORY = 0.8  # how much of the past each new measurement keeps
_LIVE_TOKENS = 8  # an answer being streamed tells the speed once it has this many tokens
# A request waiting behind long answers may keep its place for minutes: its status is said again
# this often, so that its stream shows a sign of life (proxies and clients commonly give up on a
# connection silent for 60 s, and the client would lose its place for nothing).
HEARTBEAT_S = 15.0


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Where a request stands: 0 = it has its slot; n = n-th in line, about `wait_s` to go;
    `paused`: its generation was paused to let someone else have a turn, and waits to resume."""

    position: int
    wait_s: float
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Place:
    """One request in the live queue, as an admin view shows it."""

    user: UserId
    model: ModelId
    position: int  # 0: running
    wait_s: float  # expected wait (0 when running)
    tokens: int  # tokens streamed so far (0 while waiting)
    threads: int = 0  # CPU threads it was given (0 while waiting)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """The CPU budget now: the cores it may fill (0: no budget), and each running model's
    threads (the jobs of one model share them)."""

    cores: int
    held: Mapping[ModelId, int]

    @property
    def in_use(self) -> int:
        return sum(self.held.values())


class Ticket:
    """One request's place in line, then its slot. Made and ended by `Scheduler.ticket`."""

    def __init__(
        self,
        entry: Waiting,
        timeout: float,
        heartbeat: float = HEARTBEAT_S,
        ways: Sequence[ThreadChoice] = (),
    ) -> None:
        self.entry = entry
        self.ways = tuple(ways)  # the threads it can run with, most first
        self.threads = 0  # the threads it was given with its slot
        self.status = QueueStatus(0, 0.0)
        self.granted_at: float | None = None  # monotonic time the slot was granted
        self.used_tokens: tuple[int, int] | None = None  # (prompt, completion), once known
        self.produced = 0  # chunks streamed so far (about one token each), by its holder
        # Preemption (scheduling/preempt.py): whether its engine can pause and resume it
        # identically (its holder says so once it has the engine), whether the scheduler asks
        # it to pause now, and how often and how long it was paused.
        self.pausable = False
        self.pause_asked = False
        self.pauses = 0
        self.paused_s = 0.0
        self.paused_at: float | None = None
        self.ran_s = 0.0  # time it held a slot before its last grant
        self.charged = False  # its estimate was charged to its user (once, however often paused)
        self.granted_produced = 0  # `produced` when its slot was (last) granted
        self.quantum_at = QUANTUM_TOKENS  # `produced` at which it may be paused: say so then
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._deadline = asyncio.get_running_loop().time() + timeout
        self._changed = asyncio.Event()
        self._given_up: ServerBusy | None = None  # its place went to someone else

    @property
    def granted(self) -> bool:
        return self.granted_at is not None

    def used(self, prompt_tokens: int, completion_tokens: int) -> None:
        """What the request really used: its user is charged that, not the estimate."""
        self.used_tokens = (prompt_tokens, completion_tokens)

    async def wait(self) -> AsyncIterator[QueueStatus]:
        """The status on admission, then each change of position (and the same again after
        `heartbeat` seconds without one), until the slot is granted (the last status then has
        position 0). ServerBusy if the queue timeout passes first."""
        loop = asyncio.get_running_loop()
        shown = self.status
        yield shown
        while shown.position != 0:
            if self.status.position == shown.position and self._given_up is None:
                self._changed.clear()  # (else it moved, or lost its place, while we were away)
                try:
                    async with asyncio.timeout_at(
                        min(self._deadline, loop.time() + self._heartbeat)
                    ):
                        await self._changed.wait()
                except TimeoutError:
                    if not self.granted and loop.time() >= self._deadline:
                        raise ServerBusy(
                            f"No slot of '{self.entry.model}' freed up within "
                            f"{self._timeout:.0f} s. Please retry shortly.",
                            retry_after=max(1.0, min(60.0, self.status.wait_s)),
                        ) from None
            if self._given_up is not None:
                raise self._given_up
            shown = self.status
            yield shown

    def resumes(self) -> None:
        """(The scheduler's.) Back in line after a pause: its wait starts again."""
        self._deadline = asyncio.get_running_loop().time() + self._timeout

    def give_up(self, retry_after: float) -> None:
        """(The scheduler's.) The line was full and this place goes to someone who had fewer:
        the waiter hears ServerBusy."""
        self._given_up = ServerBusy(
            "The server is busy and you had the most requests waiting: this one's place went "
            "to someone who had fewer. Please retry shortly.",
            retry_after=retry_after,
        )
        self._changed.set()

    def moved(self, status: QueueStatus) -> None:
        """(The scheduler's.) A new status; the waiter is woken when its position changes."""
        changed = status.position != self.status.position
        self.status = status
        if changed:
            self._changed.set()


RECENT_S = 10.0  # a model whose last job ended this long ago no longer shares the cores


@dataclass
class Streak:
    """A model's jobs lately: how many came with no gap of RECENT_S between them, when the
    last one came or ended, and the threads they can run with."""

    last: float = 0.0
    jobs: int = 0
    ways: tuple[ThreadChoice, ...] = ()

    def joined(self, now: float, ways: tuple[ThreadChoice, ...]) -> Streak:
        jobs = self.jobs + 1 if now - self.last <= RECENT_S else 1
        return Streak(now, jobs, ways)


class Scheduler:
    def __init__(
        self,
        *,
        slots_for: Callable[[ModelId], int],
        max_queue: int,
        queue_timeout: float,
        max_active_models: int = 0,
        policy: Policy = "fair",
        heartbeat: float = HEARTBEAT_S,
        cpu_cores: int = 0,
        threads_for: Callable[[ModelId], Sequence[ThreadChoice]] | None = None,
        preempt: bool = False,
    ) -> None:
        """`cpu_cores`: the CPU budget (0: none); `threads_for(model)`: the threads a job on
        `model` can run with, most first (scheduling/cpu.py `choices`); `preempt`: pause
        generations of people above their share when someone with none running waits
        (scheduling/preempt.py; fair policy only)."""
        self._preempt = preempt
        self.pauses = 0  # generations paused so far
        self.paused_s = 0.0  # and how long they stayed paused, in all
        self._slots_for = slots_for
        self._cpu_cores = cpu_cores
        self._threads_for = threads_for
        self._held: dict[ModelId, int] = {}  # threads held by each running model
        # Each model's recent work: the models that share the cores (cpu.share) are those
        # with a stream of jobs (two or more, none RECENT_S apart) going on now.
        self._seen: dict[ModelId, Streak] = {}
        self._heartbeat = heartbeat
        self._max_queue = max_queue
        self._queue_timeout = queue_timeout
        self._max_active_models = max_active_models
        self._policy: Policy = policy
        self._seq = itertools.count()
        self._waiting: dict[Waiting, Ticket] = {}
        self._holding: set[Ticket] = set()
        self._running: Counter[ModelId] = Counter()
        self._running_by_user: Counter[UserId] = Counter()
        self._ledger = Ledger()
        self._speed: dict[ModelId, tuple[float, float]] = {}  # decayed (seconds, tokens)

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def policy(self) -> Policy:
        return self._policy

    def running(self, model: ModelId) -> int:
        return self._running[model]

    def cpu(self) -> CpuUse:
        return CpuUse(self._cpu_cores, dict(self._held))

    def set_cpu_cores(self, cores: int) -> None:
        """A new budget (other programs took cores, or gave them back): jobs running keep their
        threads; waiting ones start by it, at once if it grew."""
        self._cpu_cores = max(1, cores)
        self._dispatch()

    def threads(self, model: ModelId) -> int:
        """The threads a job on `model` holds with all it can have (what /health shows)."""
        ways = self._ways(model)
        return ways[0].threads if ways else 0

    def queued(self, model: ModelId) -> int:
        return sum(1 for w in self._waiting if w.model == model)

    def snapshot(self) -> list[Place]:
        """The running requests, then the waiting ones in the order they will be served."""
        running = [
            Place(t.entry.user, t.entry.model, 0, 0.0, t.produced, t.threads)
            for t in sorted(self._holding, key=lambda t: t.entry.seq)
        ]
        waiting = sorted(self._waiting.values(), key=lambda t: t.status.position)
        return running + [
            Place(t.entry.user, t.entry.model, t.status.position, t.status.wait_s, 0)
            for t in waiting
        ]

    def seconds_per_token(self, model: ModelId, now: float | None = None) -> float:
        """Recent time per generated token in one slot of `model` (prompts included): from the
        answers being streamed now if they have gone far enough, else from the last ones."""
        now = time.monotonic() if now is None else now
        live = [
            (now - t.granted_at, t.produced)
            for t in self._holding
            if t.entry.model == model and t.granted_at is not None and t.produced >= _LIVE_TOKENS
        ]
        seconds, tokens = self._speed.get(model, (0.0, 0.0))
        seconds += sum(s for s, _ in live)
        tokens += sum(n for _, n in live)
        return seconds / tokens if tokens >= 1 else DEFAULT_SECONDS_PER_TOKEN

    @asynccontextmanager
    async def slot(
        self,
        model: ModelId,
        user: UserId,
        *,
        weight: float = 1.0,
        cost: float | None = None,
        ways: Sequence[ThreadChoice] | None = None,
    ) -> AsyncIterator[Ticket]:
        """Hold one of `model`'s slots for the duration of the block (waiting silently)."""
        async with self.ticket(model, user, weight=weight, cost=cost, ways=ways) as ticket:
            async for _ in ticket.wait():
                pass
            yield ticket

    @asynccontextmanager
    async def ticket(
        self,
        model: ModelId,
        user: UserId,
        *,
        weight: float = 1.0,
        cost: float | None = None,
        ways: Sequence[ThreadChoice] | None = None,
    ) -> AsyncIterator[Ticket]:
        """A place in line for `model` (ServerBusy at once if the line is full); iterate
        `ticket.wait()` to get the slot. Leaving the block leaves the line or frees the slot.
        `ways`: the threads the job can run with, when it knows them better than
        `threads_for(model)` does."""
        ways = self._ways(model) if ways is None else tuple(ways)
        entry = Waiting(
            next(self._seq),
            model,
            user,
            float(DEFAULT_MAX_TOKENS) if cost is None else max(1.0, cost),
            weight,
        )
        if len(self._waiting) >= self._max_queue and not self._can_start_now(entry, ways):
            # A paused generation keeps its place: its client has part of its answer already.
            given_up = place_to_give_up(
                [w for w, t in self._waiting.items() if t.paused_at is None], user
            )
            if given_up is None:
                raise ServerBusy(
                    f"The server is busy: {len(self._waiting)} requests are already waiting. "
                    "Please retry shortly.",
                    retry_after=self._retry_hint(),
                )
            self._waiting.pop(given_up).give_up(self._retry_hint())
        self._seen[model] = self._seen.get(model, Streak()).joined(time.monotonic(), ways)
        me = Ticket(entry, self._queue_timeout, self._heartbeat, ways)
        self._waiting[entry] = me
        try:
            self._dispatch()
            yield me
        finally:
            self._leave(me)

    def _leave(self, ticket: Ticket) -> None:
        entry = ticket.entry
        if ticket in self._holding:
            self._release(ticket)
            self._account(ticket)
        else:
            self._waiting.pop(entry, None)
            self._unpaused(ticket)
        self._dispatch()

    def _release(self, ticket: Ticket) -> None:
        entry = ticket.entry
        self._holding.discard(ticket)
        self._running[entry.model] -= 1
        self._running_by_user[entry.user] -= 1
        if self._running[entry.model] <= 0:  # its engine's threads are free again
            self._held.pop(entry.model, None)
        if entry.model in self._seen:
            self._seen[entry.model].last = time.monotonic()

    @property
    def preempts(self) -> bool:
        """Whether generations may be paused for someone waiting (IAFORALL_PREEMPT)."""
        return self._preempt

    def may_pause(self, ticket: Ticket) -> None:
        """(The holder's.) Its engine can pause and resume this generation identically."""
        ticket.pausable = True
        if self._preempt and self._waiting:
            self._dispatch()

    def quantum_over(self, ticket: Ticket) -> None:
        """(The holder's, when `produced` reaches `quantum_at`.) It has had its turn since
        its slot was granted: it may be paused now, if someone is waiting for one."""
        if self._preempt and self._waiting and ticket.pausable:
            self._dispatch()

    def paused(self, ticket: Ticket) -> None:
        """(The holder's, once its engine has stopped after `pause_asked`.) The slot is free
        for someone else; the ticket is back in line at its old place in its user's order
        (iterate `ticket.wait()` again for the slot), charged nothing more when it resumes."""
        if ticket not in self._holding:
            return
        self._release(ticket)
        now = time.monotonic()
        if ticket.granted_at is not None:
            ticket.ran_s += now - ticket.granted_at
        ticket.granted_at = None
        ticket.pause_asked = False
        ticket.pauses += 1
        ticket.paused_at = now
        ticket.status = QueueStatus(-1, 0.0, paused=True)  # (any position but 0: it waits)
        ticket.resumes()
        self.pauses += 1
        self._waiting[ticket.entry] = ticket
        self._dispatch()

    def _unpaused(self, ticket: Ticket) -> None:
        if ticket.paused_at is not None:
            took = time.monotonic() - ticket.paused_at
            ticket.paused_s += took
            self.paused_s += took
            ticket.paused_at = None

    def _account(self, ticket: Ticket) -> None:
        """Charge what was used, and learn the model's speed from it."""
        if ticket.used_tokens is None or ticket.granted_at is None:
            return
        entry = ticket.entry
        prompt, completion = ticket.used_tokens
        self._ledger = settle(
            self._ledger,
            entry.user,
            estimated=entry.cost,
            used=token_cost(prompt, completion),
            weight=entry.weight,
        )
        if completion > 0:
            seconds, tokens = self._speed.get(entry.model, (0.0, 0.0))
            took = ticket.ran_s + time.monotonic() - ticket.granted_at
            self._speed[entry.model] = (
                seconds * _SPEED_MEMORY + took,
                tokens * _SPEED_MEMORY + completion,
            )

    def _can_start_now(self, me: Waiting, ways: Sequence[ThreadChoice]) -> bool:
        active = {m for m, n in self._running.items() if n > 0}
        now = time.monotonic()
        return (
            pick_next(
                [me],
                {me.model: self._slots_for(me.model) - self._running[me.model]},
                self._running_by_user,
                active_models=active,
                max_active_models=self._max_active_models,
                start_threads=lambda w: self._start_threads(w, ways, now),
            )
            is not None
        )

    def _ways(self, model: ModelId) -> tuple[ThreadChoice, ...]:
        return tuple(self._threads_for(model)) if self._threads_for is not None else ()

    def _start_threads(
        self, entry: Waiting, ways: Sequence[ThreadChoice], now: float
    ) -> int | None:
        """The threads `entry` would start with now (cpu.threads_to_start), None: it waits."""
        load = CpuLoad(self._cpu_cores, self._held)
        cap = self._share(entry.model, ways, now) if len(ways) > 1 else 0
        if len(ways) < 2 or entry.model in self._held or ways[0].threads <= load.free:
            return threads_to_start(load, entry.model, ways, cap=cap)  # no times needed
        return threads_to_start(
            load,
            entry.model,
            ways,
            run_s=entry.cost * self.seconds_per_token(entry.model, now),
            wait_s=seconds_until_free(self._cpu_cores, self._holders_left(now), ways[0].threads),
            cap=cap,
        )

    def _share(self, model: ModelId, ways: Sequence[ThreadChoice], now: float) -> int:
        """The most threads a job on `model` should take so that the other models with a
        stream of jobs going on run beside it (cpu.share; 0: no limit). A single job is left
        to `threads_to_start`'s own trade (start now on fewer, or wait for all)."""
        busy = {w.model for w in self._waiting} | {m for m, n in self._running.items() if n > 0}
        for gone in [m for m, s in self._seen.items() if now - s.last > RECENT_S]:
            if gone not in busy:
                del self._seen[gone]
        active = {m: s.ways for m, s in self._seen.items() if s.jobs > 1}
        if model not in active:
            return 0
        active[model] = tuple(ways)
        return share(self._cpu_cores, active).get(model, 0)

    def _holders_left(self, now: float) -> list[tuple[int, float]]:
        """Each running model's threads and about how long until its last job ends."""
        left: dict[ModelId, float] = {}
        for t in self._holding:
            model = t.entry.model
            seconds = max(0.0, t.entry.cost - t.produced) * self.seconds_per_token(model, now)
            left[model] = max(left.get(model, 0.0), seconds)
        return [(threads, left.get(model, 0.0)) for model, threads in self._held.items()]

    def _retry_hint(self) -> float:
        return float(max(1, min(60, len(self._waiting))))

    def _dispatch(self) -> None:
        while self._waiting:
            models = {w.model for w in self._waiting}
            free = {m: self._slots_for(m) - self._running[m] for m in models}
            now = time.monotonic()

            def start_threads(w: Waiting, now: float = now) -> int | None:
                return self._start_threads(w, self._waiting[w].ways, now)

            chosen = pick_next(
                list(self._waiting),
                free,
                self._running_by_user,
                ledger=self._ledger,
                policy=self._policy,
                active_models={m for m, n in self._running.items() if n > 0},
                max_active_models=self._max_active_models,
                start_threads=start_threads if self._cpu_cores > 0 else None,
            )
            if chosen is None:
                break
            threads = start_threads(chosen)
            ticket = self._waiting.pop(chosen)
            self._unpaused(ticket)
            ticket.threads = threads or 0
            self._held.setdefault(chosen.model, ticket.threads)
            if not ticket.charged:
                ticket.charged = True
                self._ledger = charge(self._ledger, chosen)
            self._running[chosen.model] += 1
            self._running_by_user[chosen.user] += 1
            self._holding.add(ticket)
            ticket.granted_at = time.monotonic()
            ticket.granted_produced = ticket.produced
            ticket.quantum_at = ticket.produced + QUANTUM_TOKENS
            ticket.moved(QueueStatus(0, 0.0))
        present = {w.user for w in self._waiting} | {t.entry.user for t in self._holding}
        self._ledger = forget_idle(self._ledger, present)
        if self._preempt and self._policy == "fair" and self._waiting:
            self._ask_pause()
        self._update_positions()

    def _ask_pause(self) -> None:
        """Ask the holder of the generation `to_pause` chooses to pause (it does so at its
        next token, then calls `paused`)."""
        by_seq = {t.entry.seq: t for t in self._holding}
        running = [
            Running(
                t.entry.seq,
                t.entry.model,
                t.entry.user,
                t.entry.weight,
                pausable=t.pausable,
                pausing=t.pause_asked,
                tokens=t.produced - t.granted_produced,
            )
            for t in self._holding
        ]
        models = {w.model for w in self._waiting}
        chosen = to_pause(
            list(self._waiting), running, {m: self._slots_for(m) for m in models}, self._ledger
        )
        if chosen is not None:
            by_seq[chosen.seq].pause_asked = True

    def _update_positions(self) -> None:
        """Tell each waiting request its place in the serving order and its expected wait."""
        order = queue_order(
            list(self._waiting), self._running_by_user, self._ledger, policy=self._policy
        )
        now = time.monotonic()
        waits: dict[Waiting, float] = {}
        for model in {w.model for w in order}:
            spt = self.seconds_per_token(model, now)
            mine = [w for w in order if w.model == model]
            left = [t.entry.cost - t.produced for t in self._holding if t.entry.model == model]
            slots = self._slots_for(model)
            for w, wait in zip(
                mine,
                expected_waits([w.cost for w in mine], left, slots=slots, seconds_per_token=spt),
                strict=True,
            ):
                waits[w] = wait
        if self._cpu_cores > 0:  # and those waiting for cores, until enough are free
            holders = self._holders_left(now)
            for w in order:
                ways = self._waiting[w].ways
                if ways and w.model not in self._held:
                    cores = seconds_until_free(self._cpu_cores, holders, ways[0].threads)
                    waits[w] = max(waits[w], cores)
        for position, w in enumerate(order, start=1):
            ticket = self._waiting[w]
            ticket.moved(QueueStatus(position, waits[w], paused=ticket.paused_at is not None))
