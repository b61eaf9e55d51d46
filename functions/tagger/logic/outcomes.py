"""What became of each record in an invocation: counted for metrics, and put-backs kept for backoff."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from tagger.ports import PutBackRecord


@dataclass
class InvocationOutcomes:
    """Thread-safe tally of one invocation's records."""

    tagged: int = 0
    duplicates: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    put_back: Counter[str] = field(default_factory=Counter)
    put_back_records: list[PutBackRecord] = field(default_factory=list)
    api_latencies_ms: list[float] = field(default_factory=list)
    api_calls: int = 0
    put_events_calls: int = 0
    lease_wait_ms: list[float] = field(default_factory=list)  # one entry per record that had to wait
    lease_contention: int = 0  # records put back because their completion's lease stayed busy
    superseded_keys: int = 0
    metadata_mismatches: int = 0  # writes whose answer was not the metadata written
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_tagged(self) -> None:
        with self._lock:
            self.tagged += 1

    def count_duplicate(self) -> None:
        with self._lock:
            self.duplicates += 1

    def count_failed(self, code: str) -> None:
        with self._lock:
            self.failed[code] += 1

    def count_put_back(self, code: str, record: PutBackRecord) -> None:
        with self._lock:
            self.put_back[code] += 1
            self.put_back_records.append(record)

    def count_api_call(self, latency_seconds: float) -> None:
        with self._lock:
            self.api_calls += 1
            self.api_latencies_ms.append(latency_seconds * 1000)

    def count_put_events_call(self) -> None:
        with self._lock:
            self.put_events_calls += 1

    def count_lease_wait(self, seconds: float) -> None:
        with self._lock:
            self.lease_wait_ms.append(seconds * 1000)

    def count_lease_contention(self) -> None:
        with self._lock:
            self.lease_contention += 1

    def count_superseded(self, keys: int) -> None:
        with self._lock:
            self.superseded_keys += keys

    def count_metadata_mismatch(self) -> None:
        with self._lock:
            self.metadata_mismatches += 1


class OutcomeRecorder:
    """Container-scoped entry point for the API and publisher callbacks: counts into the current invocation."""

    def __init__(self) -> None:
        self.current = InvocationOutcomes()

    def begin(self) -> InvocationOutcomes:
        self.current = InvocationOutcomes()
        return self.current

    def api_call(self, seconds: float) -> None:
        self.current.count_api_call(seconds)

    def put_events_call(self) -> None:
        self.current.count_put_events_call()

    def metadata_mismatch(self) -> None:
        self.current.count_metadata_mismatch()
