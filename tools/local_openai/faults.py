"""Fault injection: scripted one-shot faults first, then 429 bursts, then the random error rate.

Only the decision is taken under the lock; any sleeping happens in the caller, outside it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from local_openai.knobs import Knobs

Action = Literal["reset"]
# What an injected error says about itself, beyond its status: "quota" answers OpenAI's
# `insufficient_quota` body (the organization's quota or credit is exhausted), not a rate limit.
Reason = Literal["quota"]


@dataclass(frozen=True)
class ScriptedFault:
    """A fault for the next ``count`` matching /v1 requests.

    ``status`` None answers normally (after ``delay``, if any), which simulates a request that the
    server applied although the client gave up waiting. ``action="reset"`` closes the connection
    without any response.
    """

    status: int | None = None
    count: int = 1
    method: str | None = None
    completion_id: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay: float | None = None
    action: Action | None = None
    reason: Reason | None = None

    def __post_init__(self) -> None:
        if self.status is not None and (
            isinstance(self.status, bool) or not isinstance(self.status, int) or not 400 <= self.status <= 599
        ):
            raise ValueError("status must be an HTTP error status (400-599) or null")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError("count must be a positive integer")
        if self.method is not None and not isinstance(self.method, str):
            raise ValueError("method must be a string")
        if self.completion_id is not None and not isinstance(self.completion_id, str):
            raise ValueError("completion_id must be a string")
        for name in ("retry_after", "delay"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a non-negative number")
        if self.retry_after_ms is not None and (
            isinstance(self.retry_after_ms, bool) or not isinstance(self.retry_after_ms, int) or self.retry_after_ms < 0
        ):
            raise ValueError("retry_after_ms must be a non-negative integer")
        if self.action not in (None, "reset"):
            raise ValueError("action must be 'reset' or null")
        if self.reason not in (None, "quota"):
            raise ValueError("reason must be 'quota' or null")
        if self.reason == "quota" and self.status != 429:
            raise ValueError("reason 'quota' needs status 429")

    @classmethod
    def from_json(cls, data: object) -> ScriptedFault:
        if not isinstance(data, Mapping):
            raise ValueError("a fault must be a JSON object")
        unknown = sorted(set(data) - _FAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(map(str, unknown))}")
        return cls(**{str(key): value for key, value in data.items()})

    def matches(self, method: str, completion_id: str | None) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.completion_id is None or self.completion_id == completion_id


_FAULT_FIELDS = frozenset(ScriptedFault.__dataclass_fields__)


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request instead of (or before) answering it normally."""

    source: str  # "scripted", "burst_429" or "error_rate"
    status: int | None = None  # None: answer normally
    delay: float = 0.0
    reset: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    reason: Reason | None = None


def format_seconds(seconds: float) -> str:
    """``Retry-After`` value: an integer when whole, else a decimal (which the OpenAI SDK accepts)."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def retry_headers(retry_after: float | None, retry_after_ms: int | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = format_seconds(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return headers


@dataclass
class _Pending:
    fault: ScriptedFault
    remaining: int


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._burst_position = 0
        self._rng, self._jitter_rng = _random_pair(seed)

    def restart(self, seed: int | None) -> None:
        """Re-seed the random draws and restart the 429 burst cycle (after knobs change)."""
        with self._lock:
            self._burst_position = 0
            self._rng, self._jitter_rng = _random_pair(seed)

    def push(self, faults: list[ScriptedFault]) -> int:
        """Queue faults; returns how many are pending."""
        with self._lock:
            self._queue.extend(_Pending(fault, fault.count) for fault in faults)
            return len(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**_fault_json(entry.fault), "remaining": entry.remaining} for entry in self._queue]

    def latency(self, knobs: Knobs) -> float:
        if knobs.latency_jitter <= 0:
            return knobs.latency
        with self._lock:
            return knobs.latency + self._jitter_rng.uniform(0.0, knobs.latency_jitter)

    def decide(self, knobs: Knobs, method: str, completion_id: str | None) -> FaultDecision | None:
        """The fault for this request, if any; consumes a scripted fault when one matches."""
        with self._lock:
            for index, entry in enumerate(self._queue):
                if entry.fault.matches(method, completion_id):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._queue[index]
                    fault = entry.fault
                    return FaultDecision(
                        source="scripted",
                        status=fault.status,
                        delay=fault.delay or 0.0,
                        reset=fault.action == "reset",
                        headers=retry_headers(fault.retry_after, fault.retry_after_ms),
                        reason=fault.reason,
                    )
            if knobs.burst_429_every > 0 and knobs.burst_429_length > 0:
                position = self._burst_position % knobs.burst_429_every
                self._burst_position = (position + 1) % knobs.burst_429_every
                if position >= knobs.burst_429_every - knobs.burst_429_length:
                    return FaultDecision(
                        source="burst_429",
                        status=429,
                        headers=retry_headers(knobs.retry_after, round(knobs.retry_after * 1000)),
                    )
            if knobs.error_rate > 0 and self._rng.random() < knobs.error_rate:
                return FaultDecision(source="error_rate", status=500)
        return None


def _random_pair(seed: int | None) -> tuple[random.Random, random.Random]:
    """Separate generators for faults and jitter, so turning jitter on does not shift the fault pattern.

    Fault simulation, not cryptography: reproducibility from ``seed`` is the point."""
    jitter_seed = None if seed is None else seed + 1
    return random.Random(seed), random.Random(jitter_seed)  # noqa: S311


def _fault_json(fault: ScriptedFault) -> dict[str, Any]:
    return {name: getattr(fault, name) for name in sorted(_FAULT_FIELDS)}
