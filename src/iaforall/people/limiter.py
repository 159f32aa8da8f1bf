"""Failed-login throttling: a pure sliding window per (account, address)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self, attempts: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._attempts = attempts
        self._window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]  # memory stays bounded by recent failures
            return deque()
        return failures

    def retry_after(self, name: str, address: str) -> float:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        failures = self._recent((name.lower(), address))
        if len(failures) < self._attempts:
            return 0.0
        return max(0.0, failures[0] + self._window - self._clock())

    def failed(self, name: str, address: str) -> None:
        key = (name.lower(), address)
        self._recent(key)
        self._failures.setdefault(key, deque()).append(self._clock())

    def succeeded(self, name: str, address: str) -> None:
        self._failures.pop((name.lower(), address), None)
