"""A cap on requests per second (`--rate`), spread evenly rather than in bursts.

A call carries up to ten requests, which leave together. So that they never leave in bursts of more than
a tenth of a second's worth, a paced run sends smaller calls: `rate / 10` requests each (one at a time
up to 10 per second, ten at a time from 100 per second), each call at its paced instant.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from completion_tagger.destinations import MAX_BATCH_ENTRIES

BURST_SECONDS = 0.1  # the most time's worth of requests one call may carry when paced


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

    @property
    def batch_limit(self) -> int:
        """How many requests one call may carry: ten, or fewer when paced so that none leave in a burst."""
        if self.rate is None:
            return MAX_BATCH_ENTRIES
        return max(1, min(MAX_BATCH_ENTRIES, int(self.rate * BURST_SECONDS)))

    def wait(self, count: int) -> None:
        """Wait until `count` more requests may go out."""
        if self.rate is None:
            return
        now = self.clock()
        start = now if self._next_start is None else max(now, self._next_start)
        if start > now:
            self.sleep(start - now)
        self._next_start = start + count / self.rate
