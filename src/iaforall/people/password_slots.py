"""A bound on password hashes at once: each argon2 hash takes 64 MiB and a core for a while, so
a burst of sign-ins (with or without real names) must queue instead of exhausting the machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from iaforall.core.errors import ServerBusy


class PasswordSlots:
    def __init__(self, concurrency: int, wait: float) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._wait = wait

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """One slot, for the block that hashes a password (in a worker thread, which is not
        abandoned on cancellation, so the slot is held while it hashes); after waiting `wait`
        seconds for a slot, a 429 with Retry-After instead."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait)
        except TimeoutError:
            raise ServerBusy(
                "The server is checking other passwords right now. Try again in a few seconds.",
                retry_after=self._wait,
            ) from None
        try:
            yield
        finally:
            self._slots.release()
