"""The oracle for "the newest intent wins": a completion's metadata after its requests, applied one by one
in the order they were sent.

This is the plainest possible reading of the ordering rule (README, "Modes"; docs/design.md, "Concurrency
and ordering"): whatever order deliveries, retries and concurrent invocations really applied the requests in,
the completion must end as if each had been applied alone, oldest first. The local run and the tests
compare what the API holds at the end against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tagger.models import MAX_METADATA_KEYS, TagRequest


def expected_metadata(initial: Mapping[str, str], requests_in_send_order: Iterable[TagRequest]) -> dict[str, str]:
    """Apply every request in turn: `replace` sets exactly its metadata; `merge` sets its keys and drops
    its `remove` keys, and changes nothing when the result would exceed the key limit (it fails)."""
    metadata = dict(initial)
    for request in requests_in_send_order:
        if request.mode == "replace":
            metadata = dict(request.metadata)
            continue
        merged = {**metadata, **request.metadata}
        for key in request.remove:
            merged.pop(key, None)
        if len(merged) <= MAX_METADATA_KEYS:
            metadata = merged
    return metadata
