"""What the per-completion record keeps besides its lease and key history (docs/design.md, "Concurrency and
ordering", "Crash safety"): the request *in flight* (written ahead of its API write) and the requests
*completed* on the completion (keyed by request hash: the idempotency key is the completion id plus it).

Pure: the lease store (`adapters/lease_store.py`) stores these as JSON; `leased_apply.py` decides with them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tagger.logic.key_versions import CompletionHistory, wins
from tagger.models import Mode, TaggedDetail, TagRequest

Outcome = Literal["tagged", "failed"]

# Bounds on the completed requests one record keeps besides their expiry (the oldest are dropped first).
# A request whose entry was dropped early is, when it comes again, a new intent (applied by its order,
# never a false duplicate), so these bound the item's size without risking correctness. The bytes bound
# keeps the whole item well under DynamoDB's 400 KB: completed ≤ 200 KB, history ≤ ~45 KB (128 keys),
# the in-flight entry ≤ ~55 KB (16 values of 512 characters and 64 removed keys, 4 bytes a character).
MAX_COMPLETED_ENTRIES = 64
MAX_COMPLETED_BYTES = 200_000


@dataclass(frozen=True)
class InFlight:
    """A request that holds (or held) the lease and may have written: recorded ahead of its API write.

    `owner` is the lease holder that wrote it: a taker that finds an entry with another owner knows it was
    left by a holder that never settled it.
    """

    message_id: str
    owner: str
    request_hash: str
    token: str
    mode: Mode
    set: Mapping[str, str]
    remove: tuple[str, ...]
    request_id: str | None = None

    @classmethod
    def of(cls, request: TagRequest, message_id: str, owner: str, token: str) -> InFlight:
        return cls(
            message_id=message_id,
            owner=owner,
            request_hash=request.request_hash(),
            token=token,
            mode=request.mode,
            set=dict(request.metadata),
            remove=tuple(request.remove),
            request_id=request.request_id,
        )

    def as_request(self, completion_id: str) -> TagRequest:
        """The request this entry stands for (to record it in the key history once it is found applied)."""
        return TagRequest(
            completion_id=completion_id, metadata=dict(self.set), mode=self.mode, remove=list(self.remove)
        )

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "remove": list(self.remove)}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> InFlight | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(**{**data, "remove": tuple(data.get("remove", ()))})


@dataclass(frozen=True)
class CompletedRequest:
    """A completed request: its message, its outcome, whether its event went out (and, until it has, the
    event's detail), whether it left a key to a newer request, and when it completed (epoch seconds)."""

    message_id: str
    outcome: Outcome
    published: bool
    at: int
    superseded: bool = False
    detail: dict[str, Any] | None = None

    def as_published(self) -> CompletedRequest:
        return CompletedRequest(self.message_id, self.outcome, True, self.at, self.superseded, None)


@dataclass(frozen=True)
class CompletionState:
    """The record as a request reads it with the lease: history, completed requests, the entry in flight."""

    history: CompletionHistory = field(default_factory=CompletionHistory)
    completed: Mapping[str, CompletedRequest] = field(default_factory=dict)
    in_flight: InFlight | None = None


def completed_to_json(completed: Mapping[str, CompletedRequest]) -> str:
    return json.dumps(
        {key: {k: v for k, v in asdict(entry).items() if v is not None} for key, entry in completed.items()},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def completed_from_json(text: str | None) -> dict[str, CompletedRequest]:
    if not text:
        return {}
    return {key: CompletedRequest(**entry) for key, entry in json.loads(text).items()}


def prune(completed: Mapping[str, CompletedRequest], now: int, expiry_seconds: int) -> dict[str, CompletedRequest]:
    """Drop expired entries, then the oldest until the count and size bounds hold (see the module's bounds)."""
    kept = sorted(
        ((key, entry) for key, entry in completed.items() if entry.at + expiry_seconds > now),
        key=lambda item: item[1].at,
    )[-MAX_COMPLETED_ENTRIES:]
    while kept and len(completed_to_json(dict(kept)).encode("utf-8")) > MAX_COMPLETED_BYTES:
        kept.pop(0)
    return dict(kept)


def is_duplicate(entry: CompletedRequest, message_id: str, history: CompletionHistory) -> bool:
    """A completed request's content arriving again is a duplicate when it is the same message, or when
    nothing else has completed on the completion since and it left no key to a newer request; otherwise it
    is a new intent (approve → reject → approve ends approved)."""
    if entry.message_id == message_id:
        return True
    return history.last_completed == entry.message_id and not entry.superseded


def was_applied(entry: InFlight, history: CompletionHistory, current: Mapping[str, str]) -> bool:
    """Whether the completion shows what `entry` wrote, on the keys where it was the newest intent.

    `history` is the one its holder read (it never released, so nothing else changed the completion since):
    set keys must hold its values, removed keys be absent; after a `replace`, no other key may be present
    but those newer requests own.
    """
    for key, value in entry.set.items():
        if wins(entry.token, history, key) and current.get(key) != value:
            return False
    for key in entry.remove:
        if wins(entry.token, history, key) and key in current:
            return False
    if entry.mode == "replace":
        return all(key in entry.set or not wins(entry.token, history, key) for key in current)
    return True


def superseded_keys(entry: InFlight, history: CompletionHistory, current: Mapping[str, str]) -> list[str]:
    """The keys `entry` named (a replace names every key present) on which a newer request had won."""
    named = set(entry.set) | set(entry.remove) | (set(current) if entry.mode == "replace" else set())
    return sorted(key for key in named if not wins(entry.token, history, key))


def settled_detail(
    entry: InFlight, completion_id: str, current: Mapping[str, str], superseded: list[str]
) -> TaggedDetail:
    """The `CompletionTagged` detail of an entry found applied, built from the completion as read."""
    return TaggedDetail(
        completion_id=completion_id,
        metadata=dict(current),
        mode=entry.mode,
        request_id=entry.request_id,
        message_id=entry.message_id,
        superseded=superseded or None,
    )
