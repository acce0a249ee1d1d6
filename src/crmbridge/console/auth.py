"""Who is signed in to the console, and slowing down those who guess passwords.

The session (Flask's signed cookie: Secure unless configured for plain http, HttpOnly,
SameSite=Lax) holds only the user's name and when they signed in; each request reads the user
from the store again, so a removed user or a changed role takes effect at once.

Failed logins are slowed per name and per client address: after ``FREE_FAILURES`` failures in
a row, each further attempt must wait (doubling from ``FIRST_WAIT_S`` up to ``MAX_WAIT_S``)
before it is even checked; a success clears the name's count. Waiting is enforced by refusing
early attempts, not by sleeping, so a guesser cannot tie up the server's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FIRST_WAIT_S", "FREE_FAILURES", "MAX_WAIT_S", "LoginThrottle"]

FREE_FAILURES = 3
FIRST_WAIT_S = 2.0
MAX_WAIT_S = 300.0
#: Failures older than this are forgotten.
FORGET_AFTER_S = 3600.0
#: Keys remembered at most (the oldest are dropped first): memory stays bounded.
MAX_KEYS = 10_000


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """Failure counts per key (``name:…``, ``addr:…``), in memory, thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, _Failures] = {}

    def wait_s(self, *keys: str) -> float:
        """How long the caller must still wait before an attempt under ``keys`` is checked."""
        now = self._clock()
        with self._lock:
            waits = [self._wait(self._failures.get(key), now) for key in keys]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count one failure under each key."""
        now = self._clock()
        with self._lock:
            for key in keys:
                seen = self._failures.pop(key, None)
                fresh = seen is None or now - seen.last > FORGET_AFTER_S
                self._failures[key] = _Failures(1 if fresh or seen is None else seen.count + 1, now)
            while len(self._failures) > MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        """Forget the failures under ``key`` (the name that just signed in)."""
        with self._lock:
            self._failures.pop(key, None)

    @staticmethod
    def _wait(failures: _Failures | None, now: float) -> float:
        if failures is None or failures.count < FREE_FAILURES:
            return 0.0
        if now - failures.last > FORGET_AFTER_S:
            return 0.0
        wait = min(FIRST_WAIT_S * 2 ** (failures.count - FREE_FAILURES), MAX_WAIT_S)
        return float(max(wait - (now - failures.last), 0.0))
