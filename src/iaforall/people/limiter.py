"""Failed-login throttling: pure sliding windows per (account, address) and per address.

The account window stops guessing at one account; the address window stops one machine from
trying fresh names (each attempt costs a password hash). Entries are kept in the order of their
last failure, so the ones older than the window are dropped from the front as time passes, and a
hard cap bounds the memory a flood of distinct names and addresses can take.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Far more than a real server sees in one window; past it, the oldest entries are forgotten.
MAX_ENTRIES = 100_000

_Key = tuple[str, str, str]  # ("account", lower-cased name, address) or ("address", "", unit)


def address_key(address: str) -> str:
    """The unit an address window counts: an IPv4 address, or an IPv6 /64 (one machine or
    one home network usually holds a whole /64, so its addresses are not separate people)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginLimiter:
    def __init__(
        self,
        attempts: int,
        window: float,
        *,
        address_attempts: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._attempts = attempts
        self._address_attempts = address_attempts
        self._window = window
        self._clock = clock
        self._max_entries = max_entries
        # Oldest last failure first: expiry pops from the front.
        self._failures: OrderedDict[_Key, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """Entries held (for tests and metrics): bounded by recent failures and the cap."""
        self._expire()
        return len(self._failures)

    def _expire(self) -> None:
        horizon = self._clock() - self._window
        while self._failures:
            key, failures = next(iter(self._failures.items()))
            if failures[-1] > horizon:
                break
            del self._failures[key]

    def _wait(self, key: _Key, allowed: int) -> float:
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        horizon = self._clock() - self._window
        recent = [t for t in failures if t > horizon]
        if len(recent) < allowed:
            return 0.0
        return max(0.0, recent[-allowed] + self._window - self._clock())

    def _keys(self, name: str | None, address: str) -> list[tuple[_Key, int]]:
        keys: list[tuple[_Key, int]] = []
        if name is not None:
            keys.append((("account", name.lower(), address), self._attempts))
        if self._address_attempts is not None:
            keys.append((("address", "", address_key(address)), self._address_attempts))
        return keys

    def retry_after(self, name: str | None, address: str) -> float:
        """Seconds until another attempt is allowed; 0 when it is allowed now. `name` None:
        an attempt that names no account (the setup link), counted by address only."""
        self._expire()
        return max(
            (self._wait(key, allowed) for key, allowed in self._keys(name, address)), default=0.0
        )

    def failed(self, name: str | None, address: str) -> None:
        self._expire()
        now = self._clock()
        for key, allowed in self._keys(name, address):
            failures = self._failures.pop(key, None) or deque(maxlen=allowed)
            failures.append(now)
            self._failures[key] = failures  # now the newest entry
        while len(self._failures) > self._max_entries:
            self._failures.popitem(last=False)

    def succeeded(self, name: str, address: str) -> None:
        """The account's window starts again; the address's does not (one good account must
        not let its owner reset the count of names guessed from there)."""
        self._failures.pop(("account", name.lower(), address), None)
