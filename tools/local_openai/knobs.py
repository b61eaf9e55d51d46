"""The server's tunable behaviour ("knobs"): auth key, latency and the random fault rates.

Knobs are immutable; changing them builds a new validated ``Knobs`` that is swapped in atomically.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

METADATA_UPDATE_MODES = frozenset({"replace", "merge"})


@dataclass(frozen=True)
class Knobs:
    api_key: str | None = None  # None: any non-empty bearer token is accepted
    latency: float = 0.0  # seconds added to every /v1 request
    latency_jitter: float = 0.0  # plus a uniform random 0..jitter seconds
    error_rate: float = 0.0  # fraction of /v1 requests answered 500
    seed: int | None = None  # seeds the random draws (error_rate, jitter) for reproducible runs
    burst_429_every: int = 0  # 0 disables 429 bursts
    burst_429_length: int = 0  # the last M of every N requests answer 429
    retry_after: float = 1.0  # seconds advertised by Retry-After / retry-after-ms on burst 429s
    # How a metadata update is applied. OpenAI does not document whether it replaces the map or merges into
    # it; "replace" is what the function assumes, "merge" shows what it does when that assumption is wrong.
    metadata_update: str = "replace"

    def __post_init__(self) -> None:
        _check_number("latency", self.latency, minimum=0.0)
        _check_number("latency_jitter", self.latency_jitter, minimum=0.0)
        _check_number("error_rate", self.error_rate, minimum=0.0, maximum=1.0)
        _check_number("retry_after", self.retry_after, minimum=0.0)
        _check_int("burst_429_every", self.burst_429_every)
        _check_int("burst_429_length", self.burst_429_length)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError("seed must be an integer or null")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValueError("api_key must be a non-empty string or null")
        if self.metadata_update not in METADATA_UPDATE_MODES:
            raise ValueError(f"metadata_update must be one of {', '.join(sorted(METADATA_UPDATE_MODES))}")
        if self.burst_429_every and self.burst_429_length > self.burst_429_every:
            raise ValueError("burst_429_length must not exceed burst_429_every")

    def with_changes(self, changes: Mapping[str, Any]) -> Knobs:
        """A copy with ``changes`` applied; ``ValueError`` for unknown names or invalid values."""
        unknown = sorted(set(changes) - KNOB_NAMES)
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(unknown)}; known: {', '.join(sorted(KNOB_NAMES))}")
        return dataclasses.replace(self, **dict(changes))

    def public(self) -> dict[str, Any]:
        """The knobs as JSON, never revealing the API key itself."""
        values = dataclasses.asdict(self)
        values["api_key"] = None if self.api_key is None else "<set>"
        return values


KNOB_NAMES = frozenset(field.name for field in dataclasses.fields(Knobs))


def _check_number(name: str, value: object, *, minimum: float, maximum: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}")


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
