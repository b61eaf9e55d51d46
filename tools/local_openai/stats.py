"""Request accounting, so tests can assert "nothing was written twice" and runs can report API calls."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

# Arrival times kept for rate measurements (the newest ones): enough for minutes at hundreds per second.
MAX_ARRIVALS = 100_000


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._requests: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._updates: Counter[str] = Counter()
        self._arrivals: deque[float] = deque(maxlen=MAX_ARRIVALS)

    def record_request(self, route: str) -> None:
        """Count one /v1 request under its route template, e.g. ``POST /v1/chat/completions/{id}``, and when
        it arrived (epoch seconds), so a test can count requests per second."""
        with self._lock:
            self._total += 1
            self._requests[route] += 1
            self._arrivals.append(time.time())

    def record_status(self, status: int | str) -> None:
        """Count one outcome: an HTTP status, or ``"reset"`` for a dropped connection."""
        with self._lock:
            self._statuses[str(status)] += 1

    def record_fault(self, source: str) -> None:
        with self._lock:
            self._faults[source] += 1

    def record_update(self, completion_id: str) -> None:
        """Count one successful metadata write."""
        with self._lock:
            self._updates[completion_id] += 1

    def clear(self) -> None:
        with self._lock:
            self._total = 0
            for counter in (self._requests, self._statuses, self._faults, self._updates):
                counter.clear()
            self._arrivals.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._total,
                "requests": dict(self._requests),
                "statuses": dict(self._statuses),
                "faults": dict(self._faults),
                "updates_by_completion": dict(self._updates),
                "arrivals": list(self._arrivals),
            }
