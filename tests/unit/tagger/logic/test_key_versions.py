"""The newest intent wins, key by key: the function's per-key versions checked against the plain sequential model.

Whatever order deliveries, retries and concurrent invocations apply a completion's requests in — and however
often a request is redelivered — resolving each against the history and recording it must leave what applying
them one by one in send order leaves (`local_stack.expected_state`).
"""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from local_stack.expected_state import expected_metadata
from tagger.logic import key_versions
from tagger.logic.key_versions import (
    MAX_TRACKED_KEYS,
    CompletionHistory,
    KeyVersion,
    is_newest_everywhere,
    order_token,
    record_applied,
    resolve,
)
from tagger.models import MAX_REMOVED_KEYS, TagRequest

KEYS = ["verdict", "reviewer", "team", "topic", "stage"]
VALUES = ["a", "b", "c"]


def merge(metadata: dict[str, str], remove: list[str] | None = None) -> TagRequest:
    return TagRequest.model_validate(
        {"completion_id": "c1", "mode": "merge", "metadata": metadata, "remove": remove or []}
    )


def replace(metadata: dict[str, str]) -> TagRequest:
    return TagRequest.model_validate({"completion_id": "c1", "mode": "replace", "metadata": metadata})


@st.composite
def tag_requests(draw: st.DrawFn) -> TagRequest:
    if draw(st.integers(0, 4)) == 0:
        return replace(draw(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)))
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True))
    removed = draw(st.sets(st.sampled_from(keys))) if len(keys) > 1 else set()
    return merge({key: draw(st.sampled_from(VALUES)) for key in keys if key not in removed}, sorted(removed))


def apply_in_order(
    initial: dict[str, str], sent: list[tuple[str, TagRequest]], order: list[int]
) -> tuple[dict[str, str], CompletionHistory]:
    """What the function does, one request at a time under the lease, in the given delivery order."""
    metadata, history = dict(initial), CompletionHistory()
    for index in order:
        token, request = sent[index]
        metadata = resolve(request, token, history, metadata).metadata
        history = record_applied(request, token, history)
    return metadata, history


@settings(max_examples=300, deadline=None)
@given(
    initial=st.dictionaries(st.sampled_from([*KEYS, "outside"]), st.sampled_from(VALUES), max_size=3),
    requests=st.lists(tag_requests(), min_size=1, max_size=8),
    data=st.data(),
)
def test_any_delivery_order_with_redeliveries_ends_as_the_send_order(
    initial: dict[str, str], requests: list[TagRequest], data: st.DataObject
) -> None:
    sent = [(order_token(1_700_000_000_000 + index, f"m{index}"), request) for index, request in enumerate(requests)]
    delivery = data.draw(st.permutations(range(len(sent))))
    redelivered = data.draw(st.lists(st.sampled_from(range(len(sent))), max_size=3))
    order = list(delivery)
    for index in redelivered:  # a retry of an already applied request, at a random later point
        order.insert(data.draw(st.integers(order.index(index) + 1, len(order))), index)

    final, _ = apply_in_order(initial, sent, order)

    assert final == expected_metadata(initial, requests)


def test_an_older_retry_does_not_undo_a_newer_request() -> None:
    approve = (order_token(1000, "m1"), merge({"verdict": "approve"}))
    reject = (order_token(2000, "m2"), merge({"verdict": "reject"}))
    final, history = apply_in_order({}, [approve, reject], [1, 0])
    assert final == {"verdict": "reject"}
    assert history.keys["verdict"] == KeyVersion(reject[0], present=True)
    # and the overtaken request says which keys it left alone
    after_reject = record_applied(reject[1], reject[0], CompletionHistory())
    assert resolve(approve[1], approve[0], after_reject, {"verdict": "reject"}).superseded == ["verdict"]


def test_a_removed_key_is_not_brought_back_by_an_older_request() -> None:
    set_it = (order_token(1000, "m1"), merge({"flag": "on"}))
    remove_it = (order_token(2000, "m2"), merge({"other": "x"}, remove=["flag"]))
    final, history = apply_in_order({}, [set_it, remove_it], [1, 0])
    assert final == {"other": "x"}
    assert history.keys["flag"] == KeyVersion(remove_it[0], present=False)


def test_replace_names_every_key_even_those_set_later_by_older_requests() -> None:
    old_merge = (order_token(1000, "m1"), merge({"extra": "1"}))
    newer_replace = (order_token(2000, "m2"), replace({"only": "this"}))
    final, history = apply_in_order({"outside": "x"}, [old_merge, newer_replace], [1, 0])
    assert final == {"only": "this"}
    assert history.floor == newer_replace[0]


def test_keys_set_outside_the_product_count_as_older_than_any_request() -> None:
    resolution = resolve(merge({"verdict": "a"}), order_token(1, "m1"), CompletionHistory(), {"verdict": "outside"})
    assert resolution.metadata == {"verdict": "a"}
    assert resolution.superseded == []


def test_same_millisecond_requests_are_ordered_by_message_id() -> None:
    assert order_token(5, "b") > order_token(5, "a")
    assert order_token(10, "a") > order_token(9, "z")


def test_a_replace_may_skip_its_read_only_when_it_is_newest_on_every_key() -> None:
    history = record_applied(merge({"k": "v"}), order_token(2000, "m2"), CompletionHistory())
    assert is_newest_everywhere(order_token(3000, "m3"), history)
    assert not is_newest_everywhere(order_token(1000, "m1"), history)


def test_history_round_trips_through_its_stored_form() -> None:
    history = record_applied(
        merge({"k": "v"}, remove=["gone"]), order_token(7, "m7"), CompletionHistory(last_completed="m6")
    )
    assert CompletionHistory.from_json(history.to_json()) == history
    assert CompletionHistory.from_json(None) == CompletionHistory()


def test_history_is_bounded_keeping_the_newest_keys() -> None:
    history = CompletionHistory()
    for index in range(MAX_TRACKED_KEYS + 10):
        history = record_applied(merge({f"k{index}": "v"}), order_token(index, f"m{index}"), history)
    assert len(history.keys) == MAX_TRACKED_KEYS
    assert "k0" not in history.keys
    assert f"k{MAX_TRACKED_KEYS + 9}" in history.keys


def test_tokens_stored_in_milliseconds_still_compare_with_microsecond_tokens() -> None:
    old_millisecond_token = f"{1_733_000_000_123:015d}/m-old"  # as stored before issued_at ordered requests
    assert order_token(1_733_000_000_123_000, "m-new") > old_millisecond_token  # same millisecond: new after
    assert order_token(1_733_000_000_122_999, "m-new") < old_millisecond_token
    assert order_token(1_733_000_000_124_000, "m-new") > old_millisecond_token


def test_an_evicted_tombstone_still_keeps_a_retried_older_request_from_bringing_its_key_back() -> None:
    set_flag = (order_token(1000, "m1"), merge({"flag": "on"}))
    remove_flag = (order_token(2000, "m2"), merge({"other": "x"}, remove=["flag"]))
    # Merges that each remove as many scratch keys as a request may: newer tombstones push the flag's out.
    scratch_rounds = MAX_TRACKED_KEYS // MAX_REMOVED_KEYS + 1
    cleanups = [
        (
            order_token(3000 + round_, f"m-clean-{round_}"),
            merge({}, remove=[f"scratch-{round_}-{index}" for index in range(MAX_REMOVED_KEYS)]),
        )
        for round_ in range(scratch_rounds)
    ]
    sent = [set_flag, remove_flag, *cleanups]
    in_order = list(range(len(sent)))
    final, history = apply_in_order({}, sent, [*in_order, 0])  # then the first request is delivered again

    assert "flag" not in history.keys  # its tombstone was evicted...
    assert final == {"other": "x"}  # ...yet the retried older request does not bring the flag back
    assert history.floor >= remove_flag[0]


def test_eviction_raises_the_floor_to_the_newest_evicted_version() -> None:
    history = CompletionHistory()
    for index in range(MAX_TRACKED_KEYS + 10):
        history = record_applied(merge({f"k{index}": "v"}), order_token(index, f"m{index}"), history)
    assert history.floor == order_token(9, "m9")  # k0..k9 were evicted; k9's version is the newest of them
    assert min(entry.token for entry in history.keys.values()) > history.floor


SMALL_WINDOW = 3
MANY_KEYS = [f"key{index}" for index in range(8)]


@st.composite
def wide_requests(draw: st.DrawFn) -> TagRequest:
    """Requests over more keys than the small window tracks, so entries are evicted all the time."""
    if draw(st.integers(0, 5)) == 0:
        return replace(draw(st.dictionaries(st.sampled_from(MANY_KEYS), st.sampled_from(VALUES), max_size=3)))
    keys = draw(st.lists(st.sampled_from(MANY_KEYS), min_size=1, max_size=4, unique=True))
    removed = draw(st.sets(st.sampled_from(keys))) if len(keys) > 1 else set()
    return merge({key: draw(st.sampled_from(VALUES)) for key in keys if key not in removed}, sorted(removed))


@settings(max_examples=300, deadline=None)
@given(
    initial=st.dictionaries(st.sampled_from([*MANY_KEYS, "outside"]), st.sampled_from(VALUES), max_size=3),
    requests=st.lists(wide_requests(), min_size=1, max_size=10),
    data=st.data(),
)
def test_with_a_small_window_retries_of_older_requests_never_undo_newer_ones(
    initial: dict[str, str], requests: list[TagRequest], data: st.DataObject
) -> None:
    """Requests delivered in send order, each possibly delivered again later (a retry or a redrive), while the
    history tracks only a few keys: the completion ends as the send order says."""
    sent = [(order_token(1_700_000_000_000 + index, f"m{index}"), request) for index, request in enumerate(requests)]
    order = list(range(len(sent)))
    for index in data.draw(st.lists(st.sampled_from(range(len(sent))), max_size=4)):
        order.insert(data.draw(st.integers(order.index(index) + 1, len(order))), index)

    with mock.patch.object(key_versions, "MAX_TRACKED_KEYS", SMALL_WINDOW):
        final, history = apply_in_order(initial, sent, order)

    assert len(history.keys) <= SMALL_WINDOW
    assert final == expected_metadata(initial, requests)
