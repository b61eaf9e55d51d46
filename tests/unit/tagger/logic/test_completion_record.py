"""The per-completion record's pure rules: the entry in flight, completed requests, their bounds, the duplicate
rule, and how an unsettled write is recognised on the completion (docs/design.md, "Crash safety")."""

from __future__ import annotations

from tagger.logic.completion_record import (
    MAX_COMPLETED_BYTES,
    MAX_COMPLETED_ENTRIES,
    CompletedRequest,
    InFlight,
    completed_from_json,
    completed_to_json,
    is_duplicate,
    prune,
    superseded_keys,
    was_applied,
)
from tagger.logic.key_versions import CompletionHistory, KeyVersion, order_token, record_applied
from tagger.models import MAX_KEY_LENGTH, MAX_METADATA_KEYS, MAX_REMOVED_KEYS, MAX_VALUE_LENGTH, TagRequest

OLD, MINE, NEW = order_token(1_000, "m-old"), order_token(2_000, "m-mine"), order_token(3_000, "m-new")


def in_flight(mode: str = "merge", remove: list[str] | None = None, **metadata: str) -> InFlight:
    request = TagRequest(completion_id="c1", metadata=metadata, mode=mode, remove=remove or [])  # type: ignore[arg-type]
    return InFlight.of(request, "m-mine", "container/m-mine/abc123", MINE)


def test_an_entry_in_flight_and_completed_requests_survive_their_json() -> None:
    entry = in_flight(remove=["gone"], a="1")
    assert InFlight.from_json(entry.to_json()) == entry
    assert InFlight.from_json(None) is None
    completed = {
        "h1": CompletedRequest("m1", "tagged", published=True, at=100),
        "h2": CompletedRequest("m2", "failed", published=False, at=200, detail={"message_id": "m2"}),
    }
    assert completed_from_json(completed_to_json(completed)) == completed
    assert "detail" not in completed_to_json({"h1": completed["h1"]})  # a published entry keeps no detail


def test_a_merge_was_applied_when_its_newest_keys_show_its_values() -> None:
    entry = in_flight(remove=["gone"], a="1", b="2")
    newer_owns_b = CompletionHistory(keys={"b": KeyVersion(NEW, True)})
    assert was_applied(entry, CompletionHistory(), {"a": "1", "b": "2", "other": "x"})
    assert not was_applied(entry, CompletionHistory(), {"a": "1", "b": "old"})
    assert not was_applied(entry, CompletionHistory(), {"a": "1", "b": "2", "gone": "still"})
    assert was_applied(entry, newer_owns_b, {"a": "1", "b": "newer"})  # b was never its to write
    assert superseded_keys(entry, newer_owns_b, {"a": "1", "b": "newer"}) == ["b"]


def test_a_replace_was_applied_only_if_nothing_else_is_left_but_keys_newer_requests_own() -> None:
    entry = in_flight("replace", a="1")
    assert was_applied(entry, CompletionHistory(), {"a": "1"})
    assert not was_applied(entry, CompletionHistory(), {"a": "1", "outside": "x"})
    newer_owns_x = CompletionHistory(keys={"x": KeyVersion(NEW, True)})
    assert was_applied(entry, newer_owns_x, {"a": "1", "x": "newer"})
    older_owns_x = CompletionHistory(keys={"x": KeyVersion(OLD, True)})
    assert not was_applied(entry, older_owns_x, {"a": "1", "x": "older"})


def test_recording_a_settled_entry_is_recording_its_request() -> None:
    entry = in_flight(remove=["gone"], a="1")
    request = TagRequest(completion_id="c1", metadata={"a": "1"}, remove=["gone"])
    assert record_applied(entry.as_request("c1"), entry.token, CompletionHistory()) == record_applied(
        request, MINE, CompletionHistory()
    )


def test_a_replay_is_a_duplicate_when_same_message_or_nothing_completed_since_and_nothing_superseded() -> None:
    entry = CompletedRequest("m1", "tagged", published=True, at=0)
    assert is_duplicate(entry, "m1", CompletionHistory(last_completed="m9"))  # the same message, always
    assert is_duplicate(entry, "m2", CompletionHistory(last_completed="m1"))
    assert not is_duplicate(entry, "m2", CompletionHistory(last_completed="m9"))  # approve → reject → approve
    superseded = CompletedRequest("m1", "tagged", published=True, at=0, superseded=True)
    assert not is_duplicate(superseded, "m2", CompletionHistory(last_completed="m1"))


def test_completed_requests_expire_and_stay_within_their_count() -> None:
    completed = {f"h{index}": CompletedRequest(f"m{index}", "tagged", True, at=index) for index in range(100)}
    kept = prune(completed, now=150, expiry_seconds=100)  # entries completed at 50 or before have expired
    assert sorted(entry.at for entry in kept.values()) == list(range(51, 100))
    kept = prune(completed, now=100, expiry_seconds=1000)
    assert (
        len(kept) == MAX_COMPLETED_ENTRIES and min(entry.at for entry in kept.values()) == 100 - MAX_COMPLETED_ENTRIES
    )


def test_the_record_stays_well_under_dynamodbs_item_limit_at_its_largest() -> None:
    """Worst case: the most completed entries, each with the largest unpublished detail (4-byte characters),
    the largest entry in flight, and the largest history."""
    wide = "\U0001f600"
    metadata = {
        f"{index:02d}" + wide * (MAX_KEY_LENGTH - 2): wide * MAX_VALUE_LENGTH for index in range(MAX_METADATA_KEYS)
    }
    detail = {
        "completion_id": "c" * 128,
        "metadata": metadata,
        "mode": "merge",
        "request_id": "r" * 128,
        "message_id": "m" * 100,
    }
    completed = {
        f"{index:064d}": CompletedRequest("m" * 100, "tagged", False, at=index, detail=detail) for index in range(200)
    }
    kept = prune(completed, now=200, expiry_seconds=86400)
    completed_bytes = len(completed_to_json(kept).encode())
    assert completed_bytes <= MAX_COMPLETED_BYTES and kept
    entry = InFlight.of(
        TagRequest(
            completion_id="c" * 128,
            metadata=metadata,
            remove=[f"r{index:02d}" + wide * (MAX_KEY_LENGTH - 3) for index in range(MAX_REMOVED_KEYS)],
        ),
        "m" * 100,
        "o" * 200,
        order_token(2**60, "m" * 100),
    )
    history = CompletionHistory()
    for index in range(200):
        key = f"{index:03d}" + wide * (MAX_KEY_LENGTH - 3)
        history = record_applied(
            TagRequest(completion_id="c1", metadata={key: "v"}), order_token(index, "m" * 100), history
        )
    total = completed_bytes + len(entry.to_json().encode()) + len(history.to_json().encode())
    assert total < 350_000  # DynamoDB's limit is 400 KB per item, attribute names and keys included
