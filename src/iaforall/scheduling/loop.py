"""The scheduler: the one owner of queue and slot state.

Admission is bounded (a full queue answers "busy" at once, with a hint of when to retry);
waiting requests are granted slots by `policy.pick_next` whenever one frees up.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from iaforall.core.errors import ServerBusy
from iaforall.core.types import ModelId, UserId
from iaforall.scheduling.policy import Waiting, pick_next


class Scheduler:
    def __init__(
        self,
        *,
        slots_for: Callable[[ModelId], int],
        max_queue: int,
        queue_timeout: float,
        max_active_models: int = 0,
    ) -> None:
        self._slots_for = slots_for
        self._max_queue = max_queue
        self._queue_timeout = queue_timeout
        self._max_active_models = max_active_models
        self._seq = itertools.count()
        self._waiting: dict[Waiting, asyncio.Future[None]] = {}
        self._running: Counter[ModelId] = Counter()
        self._running_by_user: Counter[UserId] = Counter()

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def running(self, model: ModelId) -> int:
        return self._running[model]

    def queued(self, model: ModelId) -> int:
        return sum(1 for w in self._waiting if w.model == model)

    @asynccontextmanager
    async def slot(self, model: ModelId, user: UserId) -> AsyncIterator[None]:
        """Hold one of `model`'s slots for the duration of the block."""
        await self._acquire(model, user)
        try:
            yield
        finally:
            self._running[model] -= 1
            self._running_by_user[user] -= 1
            self._dispatch()

    async def _acquire(self, model: ModelId, user: UserId) -> None:
        me = Waiting(next(self._seq), model, user)
        if len(self._waiting) >= self._max_queue and not self._can_start_now(me):
            raise ServerBusy(
                f"The server is busy: {len(self._waiting)} requests are already waiting. "
                "Please retry shortly.",
                retry_after=self._retry_hint(),
            )
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[me] = granted
        self._dispatch()
        try:
            await asyncio.wait_for(asyncio.shield(granted), self._queue_timeout)
        except TimeoutError:
            if not granted.done():
                del self._waiting[me]
                raise ServerBusy(
                    f"No slot of '{model}' freed up within {self._queue_timeout:.0f} s. "
                    "Please retry shortly.",
                    retry_after=self._retry_hint(),
                ) from None
        except asyncio.CancelledError:
            if granted.done():  # granted as we were cancelled: give the slot back
                self._running[model] -= 1
                self._running_by_user[user] -= 1
                self._dispatch()
            else:
                del self._waiting[me]
            raise

    def _can_start_now(self, me: Waiting) -> bool:
        active = {m for m, n in self._running.items() if n > 0}
        return (
            pick_next(
                [me],
                {me.model: self._slots_for(me.model) - self._running[me.model]},
                self._running_by_user,
                active_models=active,
                max_active_models=self._max_active_models,
            )
            is not None
        )

    def _retry_hint(self) -> float:
        return float(max(1, min(60, len(self._waiting))))

    def _dispatch(self) -> None:
        while self._waiting:
            models = {w.model for w in self._waiting}
            free = {m: self._slots_for(m) - self._running[m] for m in models}
            chosen = pick_next(
                list(self._waiting),
                free,
                self._running_by_user,
                active_models={m for m, n in self._running.items() if n > 0},
                max_active_models=self._max_active_models,
            )
            if chosen is None:
                return
            future = self._waiting.pop(chosen)
            self._running[chosen.model] += 1
            self._running_by_user[chosen.user] += 1
            future.set_result(None)
