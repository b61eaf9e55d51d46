"""Tag request validation: every rule of the README's "Tag requests", each error naming its field."""

import json

import pytest

from tagger.errors import InvalidTagRequest
from tagger.logic.parsing import parse_tag_request, read_body


def body(**fields: object) -> str:
    return json.dumps(fields)


def ordering_key(raw: str, message_id: str) -> str:
    return read_body(raw, message_id).ordering_key


def error_of(raw: str) -> InvalidTagRequest:
    with pytest.raises(InvalidTagRequest) as caught:
        parse_tag_request(raw)
    return caught.value


def test_minimal_request_defaults_to_merge_with_nothing_removed() -> None:
    request = parse_tag_request(body(completion_id="chatcmpl-1", metadata={"reviewed": "true"}))
    assert request.mode == "merge"
    assert request.remove == []
    assert request.request_id is None


def test_full_request_is_read_as_given() -> None:
    request = parse_tag_request(
        body(completion_id="c_1-x", metadata={"a": "1"}, mode="merge", remove=["b"], request_id="r-1")
    )
    assert (request.completion_id, request.metadata, request.remove, request.request_id) == (
        "c_1-x",
        {"a": "1"},
        ["b"],
        "r-1",
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(completion_id="c", metdata={"a": "1"}), "metdata: unknown field"),
        (body(completion_id="c", metadata={"a": "1"}, extra=1), "extra: unknown field"),
        (body(metadata={"a": "1"}), "completion_id: Field required"),
        (body(completion_id="c"), "metadata: Field required"),
        (body(completion_id="a/b", metadata={"a": "1"}), "completion_id: String should match pattern"),
        (body(completion_id="a.b", metadata={"a": "1"}), "completion_id"),
        (body(completion_id="a b", metadata={"a": "1"}), "completion_id"),
        (body(completion_id="", metadata={"a": "1"}), "completion_id"),
        (body(completion_id="x" * 129, metadata={"a": "1"}), "completion_id"),
        (body(completion_id="c", metadata={"a": 1}), "metadata.a: Input should be a valid string"),
        (body(completion_id="c", metadata={"a": True}), "metadata.a"),
        (body(completion_id="c", metadata={"a": None}), "metadata.a"),
        (body(completion_id="c", metadata={"k" * 65: "v"}), "metadata.k"),
        (body(completion_id="c", metadata={"": "v"}), "metadata."),
        (body(completion_id="c", metadata={"a": "v" * 513}), "metadata.a: String should have at most 512"),
        (
            body(completion_id="c", metadata={f"k{i}": "v" for i in range(17)}),
            "metadata: Dictionary should have at most 16",
        ),
        (body(completion_id="c", metadata=["a"]), "metadata: Input should be a valid dictionary"),
        (body(completion_id="c", metadata={"a": "1"}, mode="upsert"), "mode: Input should be 'merge' or 'replace'"),
        (body(completion_id="c", metadata={"a": "1"}, remove="b"), "remove: Input should be a valid list"),
        (body(completion_id="c", metadata={"a": "1"}, remove=[1]), "remove.0"),
        (body(completion_id="c", metadata={"a": "1"}, request_id="r" * 129), "request_id"),
        (body(completion_id="c", metadata={"a": "1"}, request_id=5), "request_id"),
        (body(completion_id="c", metadata={}), "metadata: a merge must set at least one key or remove"),
        (body(completion_id="c", metadata={}, mode="replace", remove=["a"]), "remove: not allowed with mode 'replace'"),
        (body(completion_id="c", metadata={"a": "1"}, remove=["a"]), "remove: keys ['a'] are also set"),
    ],
)
def test_invalid_requests_name_the_field_and_rule(raw: str, field: str) -> None:
    assert field in error_of(raw).message


def test_unicode_lengths_count_characters_not_bytes() -> None:
    request = parse_tag_request(body(completion_id="c", metadata={"é" * 64: "日" * 512}))
    assert len(next(iter(request.metadata.values()))) == 512
    assert "metadata" in error_of(body(completion_id="c", metadata={"a": "日" * 513})).message


def test_replace_may_clear_all_metadata() -> None:
    assert parse_tag_request(body(completion_id="c", metadata={}, mode="replace")).metadata == {}


def test_merge_that_only_removes_is_valid() -> None:
    assert parse_tag_request(body(completion_id="c", metadata={}, remove=["x"])).remove == ["x"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "body: not valid JSON"),
        ("", "body: not valid JSON"),
        ("[1, 2]", "body: must be a JSON object, got an array"),
        ('"text"', "got a string"),
        ("null", "got null"),
        ("3", "got a number"),
    ],
)
def test_unreadable_bodies_are_validation_errors(raw: str, message: str) -> None:
    error = error_of(raw)
    assert message in error.message
    assert error.completion_id is None


def test_ids_are_echoed_from_an_invalid_request_for_correlation() -> None:
    error = error_of(body(completion_id="chatcmpl-9", request_id="req-7", metdata={}))
    assert (error.completion_id, error.request_id) == ("chatcmpl-9", "req-7")


def test_echoed_ids_are_truncated_so_events_stay_small() -> None:
    error = error_of(body(completion_id="x" * 100_000, metadata={"a": "1"}))
    assert error.completion_id is not None
    assert len(error.completion_id) == 128


def test_eventbridge_envelope_carries_the_request_in_detail() -> None:
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "CompletionTagRequested",
        "source": "acme.reviews",
        "account": "123456789012",
        "time": "2026-11-26T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"completion_id": "chatcmpl-1", "metadata": {"a": "1"}, "mode": "replace"},
    }
    request = parse_tag_request(json.dumps(event))
    assert (request.completion_id, request.mode) == ("chatcmpl-1", "replace")


def test_envelope_errors_point_inside_detail() -> None:
    event = {"detail-type": "x", "source": "s", "detail": {"completion_id": "c", "metdata": {}}}
    message = error_of(json.dumps(event)).message
    assert "detail.metdata: unknown field" in message
    assert "detail.metadata: Field required" in message


def test_error_messages_are_bounded() -> None:
    raw = body(completion_id="c", metadata={f"k{i}": i for i in range(16)})
    message = error_of(raw).message
    assert "and 11 more" in message
    assert len(message) <= 1000


def test_ordering_key_groups_by_completion_and_isolates_unreadable_bodies() -> None:
    assert ordering_key(body(completion_id="c1", metadata={}), "m1") == ordering_key(
        json.dumps({"detail-type": "x", "source": "s", "detail": {"completion_id": "c1"}}), "m2"
    )
    assert ordering_key("garbage", "m1") != ordering_key("garbage", "m2")
    assert ordering_key(body(completion_id=5), "m3") == "message:m3"
