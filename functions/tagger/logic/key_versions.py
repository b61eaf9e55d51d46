"""The newest intent wins, key by key: which keys a request may still change, and what it leaves behind.

Every request carries an *order token* built from its SQS `SentTimestamp` (ties broken by message id), so
requests compare the same way in every container. A completion's history remembers, per key, the token of
the last request that set or removed it, and the token of the last `replace` (the *floor*): a `replace`
names every key, so any key without an entry of its own was last named by that replace (or, with no
replace yet, by nobody: keys set outside the product count as older than any request).

A request changes a key only when its token is at least the key's version; equal only for the same
message, which makes a redelivered request re-apply exactly what it applied before. This module is pure:
the lease (`leases.py`) reads the history before the request and writes the updated one after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from tagger.models import TagRequest

# Bounds on what one completion's history keeps. Removed keys are remembered (as tombstones) so that a
# retried older request cannot bring them back; the oldest entries go first once a completion has named
# this many distinct keys, which only completions with an unbounded key vocabulary reach. What is evicted
# is not forgotten: the floor rises to it (`record_applied`).
MAX_TRACKED_KEYS = 128
NEVER = ""  # the version of a key no request has named: older than every token


def order_token(sent_timestamp_ms: int, message_id: str) -> str:
    """A string that sorts requests by SentTimestamp, then message id (same-millisecond sends)."""
    return f"{sent_timestamp_ms:015d}/{message_id}"


@dataclass(frozen=True)
class KeyVersion:
    """The last request that named a key: its token, and whether it set the key (False: removed it)."""

    token: str
    present: bool


@dataclass(frozen=True)
class CompletionHistory:
    """What was applied to one completion: per-key versions, the last replace, the last completed message."""

    floor: str = NEVER
    keys: Mapping[str, KeyVersion] = field(default_factory=dict)
    last_completed: str | None = None

    def version(self, key: str) -> str:
        entry = self.keys.get(key)
        return entry.token if entry is not None else self.floor

    def newest_token(self) -> str:
        return max([self.floor, *(entry.token for entry in self.keys.values())])

    def to_json(self) -> str:
        return json.dumps(
            {
                "floor": self.floor,
                "keys": {key: [entry.token, entry.present] for key, entry in sorted(self.keys.items())},
                "last_completed": self.last_completed,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | None) -> CompletionHistory:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            floor=str(data.get("floor") or NEVER),
            keys={str(key): KeyVersion(str(token), bool(present)) for key, (token, present) in data["keys"].items()},
            last_completed=data.get("last_completed"),
        )


@dataclass(frozen=True)
class Resolution:
    """What a request does to a completion whose metadata is `current`."""

    metadata: dict[str, str]  # the metadata to leave on the completion
    superseded: list[str]  # keys the request named but a newer request had already named


def wins(request_token: str, history: CompletionHistory, key: str) -> bool:
    return request_token >= history.version(key)


def is_newest_everywhere(request_token: str, history: CompletionHistory) -> bool:
    """No key has been named by a newer request: a `replace` may then be written without reading first."""
    return request_token >= history.newest_token()


def resolve(request: TagRequest, token: str, history: CompletionHistory, current: Mapping[str, str]) -> Resolution:
    """Apply the request to `current`, key by key, only where it is the newest intent."""
    superseded: list[str] = []
    if request.mode == "replace":
        metadata = {}
        for key in sorted(current.keys() | request.metadata.keys()):
            if wins(token, history, key):
                if key in request.metadata:
                    metadata[key] = request.metadata[key]
            else:
                superseded.append(key)
                if key in current:
                    metadata[key] = current[key]
        return Resolution(metadata, superseded)
    metadata = dict(current)
    for key, value in request.metadata.items():
        if wins(token, history, key):
            metadata[key] = value
        else:
            superseded.append(key)
    for key in request.remove:
        if wins(token, history, key):
            metadata.pop(key, None)
        else:
            superseded.append(key)
    return Resolution(metadata, sorted(superseded))


def record_applied(request: TagRequest, token: str, history: CompletionHistory) -> CompletionHistory:
    """The history after the request was applied. It depends only on the request and the history, never on the
    metadata, so recording the same request twice changes nothing."""
    keys = dict(history.keys)
    floor = history.floor
    if request.mode == "replace":
        if token >= floor:
            floor = token
            keys = {key: entry for key, entry in keys.items() if entry.token > token}
        named: dict[str, bool] = dict.fromkeys(request.metadata, True)
    else:
        named = {**dict.fromkeys(request.metadata, True), **dict.fromkeys(request.remove, False)}
    for key, present in named.items():
        if wins(token, history, key):
            keys[key] = KeyVersion(token, present)
    ranked = sorted(keys.items(), key=lambda item: item[1].token, reverse=True)
    kept, evicted = ranked[:MAX_TRACKED_KEYS], ranked[MAX_TRACKED_KEYS:]
    if evicted:
        # An evicted key's version falls back to the floor, so the floor rises to the newest version evicted:
        # a retried older request can then not bring back a key it no longer sees removed. The price is that
        # an older request arriving late is left alone (superseded) on keys no longer tracked.
        floor = max(floor, evicted[0][1].token)
    return CompletionHistory(floor=floor, keys=dict(kept), last_completed=history.last_completed)
