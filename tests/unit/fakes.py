"""Small fakes for the unit tests, and the one place the tests import the function's exception types from."""

from __future__ import annotations

import threading
from typing import Any

from tagger.adapters.api_errors import ApiError
from tagger.adapters.api_key import ApiKeyUnavailable
from tagger.logic.timing import Deadline

__all__ = ["ApiError", "ApiKeyUnavailable", "FakeClock", "FakeCompletions", "FakeKeys", "deadline_on"]


class FakeClock:
    """Monotonic time that only moves when `sleep` is called; every sleep is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def deadline_on(clock: FakeClock, seconds_left: float, reserve_seconds: float = 0.0) -> Deadline:
    """A Deadline whose invocation ends `seconds_left` after the clock's current time."""
    ends_at = clock.now + seconds_left
    return Deadline(lambda: round((ends_at - clock.now) * 1000), int(reserve_seconds * 1000))


class FakeKeys:
    """An API key source: `get` hands out the current key, `refresh` moves on to the next one (a rotation)."""

    def __init__(self, *keys: str) -> None:
        self._keys = list(keys)
        self._index = 0
        self.refreshes = 0

    def get(self) -> str:
        return self._keys[self._index]

    def refresh(self) -> str:
        self.refreshes += 1
        self._index = min(self._index + 1, len(self._keys) - 1)
        return self.get()


class FakeCompletions:
    """The completions API in memory: completion id -> metadata; records every call as (method, id)."""

    def __init__(self, metadata: dict[str, Any] | None = None, completion_id: str = "chatcmpl-1") -> None:
        self.store: dict[str, Any] = {completion_id: dict(metadata or {})}
        self.calls: list[tuple[str, str]] = []
        self.writes: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def retrieve(self, completion_id: str, deadline: Deadline) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("GET", completion_id))
            return {"id": completion_id, "object": "chat.completion", "metadata": self.store[completion_id]}

    def update_metadata(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]:
        with self._lock:
            self.calls.append(("POST", completion_id))
            self.writes.append(dict(metadata))
            self.store[completion_id] = dict(metadata)
            return {"id": completion_id, "object": "chat.completion", "metadata": dict(metadata)}
