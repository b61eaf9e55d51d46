"""Tagger: how a tag request becomes reads and writes of a completion's metadata (README, "Modes")."""

from __future__ import annotations

from typing import Any

import pytest

from tagger.errors import CompletionsApiError
from tagger.logic.key_versions import CompletionHistory, KeyVersion, order_token
from tagger.logic.records import Delivery
from tagger.logic.tagging import Applied, Ordering, Tagger
from tagger.logic.timing import Deadline
from tagger.models import MAX_METADATA_KEYS, TagRequest
from tests.shared.fakes import FakeApi

COMPLETION_ID = "chatcmpl-1"
DEADLINE = Deadline(lambda: 60_000, 0)
OLD = order_token(1_000, "m-old")
MIDDLE = order_token(2_000, "m-middle")
NEW = order_token(3_000, "m-new")


def request(mode: str = "merge", remove: list[str] | None = None, **metadata: str) -> TagRequest:
    return TagRequest(completion_id=COMPLETION_ID, metadata=metadata, mode=mode, remove=remove or [])  # type: ignore[arg-type]


def api_holding(metadata: dict[str, str] | None = None) -> FakeApi:
    """The completions API in memory, holding the one completion these tests tag."""
    api = FakeApi()
    api.seed(COMPLETION_ID, metadata)
    return api


def delivery(tag: TagRequest, *, redelivered: bool = False) -> Delivery:
    return Delivery(
        request=tag,
        message_id="m1",
        order_token=order_token(1_000, "m1"),
        receive_count=2 if redelivered else 1,
        is_last=False,
        deadline=DEADLINE,
    )


def apply(api: FakeApi, tag: TagRequest, *, redelivered: bool = False, ordering: Ordering | None = None) -> Applied:
    return Tagger(api).apply(delivery(tag, redelivered=redelivered), ordering)


# Without ordering


def test_replace_is_one_blind_write() -> None:
    api = api_holding({"old": "1", "team": "a"})
    applied = apply(api, request("replace", team="b", env="prod"))
    assert api.calls == [("POST", COMPLETION_ID)]
    assert api.written == [{"team": "b", "env": "prod"}]
    assert applied == Applied({"team": "b", "env": "prod"}, [])


def test_a_redelivered_replace_already_applied_reads_and_does_not_write_again() -> None:
    api = api_holding({"team": "b", "env": "prod"})
    applied = apply(api, request("replace", team="b", env="prod"), redelivered=True)
    assert api.calls == [("GET", COMPLETION_ID)]
    assert applied.metadata == {"team": "b", "env": "prod"}


def test_a_redelivered_replace_not_yet_applied_reads_then_writes() -> None:
    api = api_holding({"team": "a", "old": "1"})
    applied = apply(api, request("replace", team="b"), redelivered=True)
    assert api.calls == [("GET", COMPLETION_ID), ("POST", COMPLETION_ID)]
    assert api.written == [{"team": "b"}]
    assert applied.metadata == {"team": "b"}


def test_merge_reads_merges_and_writes_the_union_less_the_removed_keys() -> None:
    api = api_holding({"team": "a", "keep": "1", "drop": "x"})
    applied = apply(api, request(team="b", env="prod", remove=["drop", "absent"]))
    assert api.calls == [("GET", COMPLETION_ID), ("POST", COMPLETION_ID)]
    assert api.written == [{"team": "b", "keep": "1", "env": "prod"}]
    assert applied.metadata == {"team": "b", "keep": "1", "env": "prod"}


@pytest.mark.parametrize("redelivered", [False, True])
def test_merge_that_changes_nothing_does_not_write(redelivered: bool) -> None:
    api = api_holding({"team": "b", "keep": "1"})
    applied = apply(api, request(team="b", remove=["absent"]), redelivered=redelivered)
    assert api.calls == [("GET", COMPLETION_ID)]
    assert applied.metadata == {"team": "b", "keep": "1"}


def test_merge_that_only_removes_writes_without_the_key() -> None:
    api = api_holding({"team": "a", "drop": "x"})
    apply(api, request(remove=["drop"]))
    assert api.written == [{"team": "a"}]


def test_merge_up_to_the_key_limit_is_written() -> None:
    current = {f"k{n}": "v" for n in range(MAX_METADATA_KEYS - 1)}
    api = api_holding(current)
    applied = apply(api, request(extra="1"))
    assert len(applied.metadata) == MAX_METADATA_KEYS
    assert len(api.written) == 1


def test_merge_over_the_key_limit_is_invalid_not_retryable_and_writes_nothing() -> None:
    current = {f"k{n}": "v" for n in range(MAX_METADATA_KEYS - 1)}
    api = api_holding(current)
    with pytest.raises(CompletionsApiError) as raised:
        apply(api, request(extra1="1", extra2="2"))
    assert raised.value.code == "invalid_request"
    assert not raised.value.retryable
    assert api.written == []
    assert api.metadata[COMPLETION_ID] == current


def test_merge_that_removes_as_many_as_it_adds_stays_within_the_limit() -> None:
    current = {f"k{n}": "v" for n in range(MAX_METADATA_KEYS)}
    api = api_holding(current)
    applied = apply(api, request(extra="1", remove=["k0"]))
    assert len(applied.metadata) == MAX_METADATA_KEYS
    assert "k0" not in applied.metadata


@pytest.mark.parametrize("metadata", [["team", "a"], "team=a", 42])
def test_metadata_that_is_not_an_object_is_an_upstream_error(metadata: Any) -> None:
    api = api_holding()
    api.metadata[COMPLETION_ID] = metadata
    with pytest.raises(CompletionsApiError) as raised:
        apply(api, request(team="b"))
    assert raised.value.code == "upstream_error"
    assert raised.value.retryable
    assert api.written == []


def test_a_completion_without_metadata_counts_as_empty() -> None:
    api = api_holding()
    api.metadata[COMPLETION_ID] = None
    assert apply(api, request(team="b")).metadata == {"team": "b"}


# With an Ordering (per-completion leases)


def history(floor: str = "", **keys: tuple[str, bool]) -> CompletionHistory:
    return CompletionHistory(floor=floor, keys={key: KeyVersion(*version) for key, version in keys.items()})


def test_an_older_merge_changes_only_the_keys_it_is_newest_on_and_reports_the_others() -> None:
    api = api_holding({"team": "newer", "gone": "x", "env": "dev"})
    seen = history(team=(NEW, True), gone=(NEW, True), env=(OLD, True))
    applied = apply(api, request(team="older", env="prod", remove=["gone"]), ordering=Ordering(MIDDLE, seen))
    assert api.written == [{"team": "newer", "gone": "x", "env": "prod"}]
    assert applied == Applied({"team": "newer", "gone": "x", "env": "prod"}, ["gone", "team"])


def test_an_older_merge_superseded_on_every_key_writes_nothing() -> None:
    api = api_holding({"team": "newer"})
    applied = apply(api, request(team="older"), ordering=Ordering(OLD, history(team=(NEW, True))))
    assert api.calls == [("GET", COMPLETION_ID)]
    assert applied == Applied({"team": "newer"}, ["team"])


def test_a_replace_newest_everywhere_is_written_without_a_read() -> None:
    api = api_holding({"team": "a", "old": "1"})
    seen = history(floor=OLD, team=(MIDDLE, True))
    applied = apply(api, request("replace", team="b"), ordering=Ordering(NEW, seen))
    assert api.calls == [("POST", COMPLETION_ID)]
    assert applied == Applied({"team": "b"}, [])


def test_an_older_replace_keeps_the_newer_keys_and_reports_them() -> None:
    api = api_holding({"team": "newer", "added": "later", "stale": "1"})
    seen = history(floor=OLD, team=(NEW, True), added=(NEW, True))
    applied = apply(api, request("replace", team="older", env="prod"), ordering=Ordering(MIDDLE, seen))
    assert api.calls == [("GET", COMPLETION_ID), ("POST", COMPLETION_ID)]
    assert api.written == [{"team": "newer", "added": "later", "env": "prod"}]
    assert applied.superseded == ["added", "team"]


def test_a_redelivered_replace_with_ordering_reads_before_it_writes() -> None:
    api = api_holding({"team": "b"})
    applied = apply(api, request("replace", team="b"), redelivered=True, ordering=Ordering(NEW, history(floor=OLD)))
    assert api.calls == [("GET", COMPLETION_ID)]
    assert applied == Applied({"team": "b"}, [])


# The API's answer against what was written


class MergingApi(FakeApi):
    """An API whose update merges into the stored metadata instead of replacing it (undocumented either way)."""

    def update_metadata(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]:
        self._answer("POST", completion_id)
        with self.lock:
            self.written.append(dict(metadata))
            self.metadata[completion_id] = {**self.metadata[completion_id], **metadata}
        return {"id": completion_id, "metadata": dict(self.metadata[completion_id])}


def test_an_answer_that_kept_a_removed_key_is_reported_and_returned() -> None:
    api = MergingApi()
    api.seed(COMPLETION_ID, {"keep": "1", "drop": "x"})
    mismatches: list[None] = []
    applied = Tagger(api, on_mismatch=lambda: mismatches.append(None)).apply(delivery(request(remove=["drop"])))
    assert api.written == [{"keep": "1"}]
    assert applied.metadata == {"keep": "1", "drop": "x"}  # the API's answer, as the event reports it
    assert len(mismatches) == 1


def test_an_answer_with_a_value_not_as_written_is_reported() -> None:
    api = api_holding({"a": "1"})
    real_update = api.update_metadata

    def rewriting(completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]:
        answer = real_update(completion_id, metadata, deadline)
        return {**answer, "metadata": {**answer["metadata"], "a": "2 (normalised)"}}

    api.update_metadata = rewriting  # type: ignore[method-assign]
    mismatches: list[None] = []
    applied = Tagger(api, on_mismatch=lambda: mismatches.append(None)).apply(delivery(request(a="2")))
    assert applied.metadata == {"a": "2 (normalised)"}
    assert len(mismatches) == 1


@pytest.mark.parametrize("tag", [request(b="2"), request(remove=["a"]), request("replace", c="3")])
def test_an_answer_equal_to_what_was_written_is_not_reported(tag: TagRequest) -> None:
    api = api_holding({"a": "1"})
    mismatches: list[None] = []
    Tagger(api, on_mismatch=lambda: mismatches.append(None)).apply(delivery(tag))
    assert api.writes() == 1
    assert mismatches == []
