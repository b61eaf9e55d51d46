"""Time budgets: how long an invocation has left, and how long the API asked us to stay away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Deadline:
    """The usable rest of an invocation: Lambda's remaining time less a reserve for wrapping up."""

    def __init__(self, remaining_millis: Callable[[], int], reserve_millis: int):
        self._remaining_millis = remaining_millis
        self._reserve_millis = reserve_millis

    def remaining(self) -> float:
        """Seconds that may still be spent on work (never negative)."""
        return max((self._remaining_millis() - self._reserve_millis) / 1000, 0.0)

    def until_end(self) -> float:
        """Seconds until Lambda ends the invocation (the reserve included)."""
        return max(self._remaining_millis() / 1000, 0.0)

    def allows(self, seconds: float) -> bool:
        """Whether a wait of this long still leaves the invocation time to finish."""
        return seconds < self.remaining()


class RateLimitGate:
    """Remembers, per container, until when the API asked us to back off (a 429's Retry-After).

    Records that have not started yet consult it, so the rest of a batch is not sent into the same wall.
    `share`, when given, tells the other containers too (the fleet's shared request budget).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, share: Callable[[float], None] | None = None):
        self._clock = clock
        self._share = share
        self._lock = threading.Lock()
        self._blocked_until = 0.0

    def block_for(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        if self._share is not None:
            self._share(seconds)

    def wait_left(self) -> float:
        """Seconds until requests may be sent again; 0 when open."""
        with self._lock:
            return max(self._blocked_until - self._clock(), 0.0)
