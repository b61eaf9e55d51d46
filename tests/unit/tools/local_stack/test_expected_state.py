"""The ordering oracle itself: sequential application, as a producer reads the README's rules."""

from __future__ import annotations

from local_stack.expected_state import expected_metadata
from tagger.models import TagRequest


def merge(**kwargs: object) -> TagRequest:
    return TagRequest.model_validate({"completion_id": "c1", "mode": "merge", "metadata": {}, **kwargs})


def replace(metadata: dict[str, str]) -> TagRequest:
    return TagRequest.model_validate({"completion_id": "c1", "mode": "replace", "metadata": metadata})


def test_later_request_wins_per_key_and_keeps_the_rest() -> None:
    requests = [merge(metadata={"verdict": "approve", "by": "ana"}), merge(metadata={"verdict": "reject"})]
    assert expected_metadata({"team": "x"}, requests) == {"team": "x", "verdict": "reject", "by": "ana"}


def test_approve_reject_approve_ends_approved() -> None:
    approve, reject = merge(metadata={"verdict": "approve"}), merge(metadata={"verdict": "reject"})
    assert expected_metadata({}, [approve, reject, approve]) == {"verdict": "approve"}


def test_replace_drops_every_other_key_and_later_merges_build_on_it() -> None:
    requests = [merge(metadata={"a": "1"}), replace({"b": "2"}), merge(metadata={"c": "3"}, remove=["b"])]
    assert expected_metadata({"outside": "kept?"}, requests) == {"c": "3"}


def test_merge_over_the_key_limit_changes_nothing() -> None:
    full = {f"k{i}": "v" for i in range(16)}
    assert expected_metadata(full, [merge(metadata={"one-more": "v"})]) == full
