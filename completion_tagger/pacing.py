"""A cap on requests per second (`--rate`), spread evenly rather than in bursts."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Waits before each batch so that, on average, at most `rate` requests go out per second.

    The first batch goes at once; each later one waits until the previous batches' share of time has
    passed. Time spent sending counts toward that share, so a slow destination is not slowed further.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate: must be above 0, got {rate:g}")
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next_start: float | None = None

    def wait(self, count: int) -> None:
        """Wait until `count` more requests may go out."""
        if self.rate is None:
            return
        now = self.clock()
        start = now if self._next_start is None else max(now, self._next_start)
        if start > now:
            self.sleep(start - now)
        self._next_start = start + count / self.rate
