"""The `issued_at` the sender gives every request that has none (README, "Tag requests").

A request's order is its `issued_at`, else its message's SentTimestamp, and SentTimestamp cannot order
the requests of one `SendMessageBatch` call (they share it) nor survive a redrive. So the sender decides
each line's `issued_at` once, when it reads the line, before the first try: a retried entry keeps it,
and a file's later line for a completion always wins over an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tagger.models import format_issued_at


def _now_micros() -> int:
    return time.time_ns() // 1000


class IssuedAtStamps:
    """Hands out `issued_at` values strictly increasing in the order they are asked for.

    Each is now (microseconds) or one microsecond after the previous one, whichever is later, so lines
    read within the same microsecond, or while the wall clock steps back, still come out in order.
    """

    def __init__(self, clock_micros: Callable[[], int] = _now_micros) -> None:
        self._clock_micros = clock_micros
        self._last: int | None = None

    def next(self) -> str:
        now = self._clock_micros()
        stamp = now if self._last is None else max(now, self._last + 1)
        self._last = stamp
        return format_issued_at(stamp)
