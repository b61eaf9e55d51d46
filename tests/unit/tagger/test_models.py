"""The idempotency key (README, "Idempotency") and the result event models (README, "Result events")."""

import hashlib
import json
from typing import get_args

import pytest
from pydantic import ValidationError

from tagger.models import (
    ResultDetail,
    TagFailedDetail,
    TaggedDetail,
    TagRequest,
    format_issued_at,
    issued_at_instant,
    to_micros,
)
from tagger.result_events import RESULT_EVENTS, detail_from_dict, detail_type_of


def request(**fields: object) -> TagRequest:
    return TagRequest.model_validate_json(json.dumps({"completion_id": "c1", **fields}))


def test_same_tags_in_another_key_order_have_the_same_key() -> None:
    first = request(metadata={"a": "1", "b": "2"})
    second = TagRequest.model_validate_json('{"metadata": {"b": "2", "a": "1"}, "completion_id": "c1"}')
    assert first.idempotency_payload() == second.idempotency_payload()


def test_remove_order_and_repeats_do_not_change_the_key() -> None:
    assert (
        request(metadata={"a": "1"}, remove=["x", "y"]).idempotency_payload()
        == request(metadata={"a": "1"}, remove=["y", "x", "y"]).idempotency_payload()
    )


@pytest.mark.parametrize(
    "other",
    [
        {"metadata": {"a": "2"}},
        {"metadata": {"a": "1"}, "mode": "replace"},
        {"metadata": {"a": "1"}, "remove": ["z"]},
        {"metadata": {"a": "1", "b": "1"}},
    ],
)
def test_anything_the_request_asks_for_changes_the_key(other: dict[str, object]) -> None:
    assert request(metadata={"a": "1"}).idempotency_payload() != request(**other).idempotency_payload()


def test_key_is_per_completion_and_ignores_request_id() -> None:
    base = request(metadata={"a": "1"})
    assert base.idempotency_payload() != TagRequest(completion_id="c2", metadata={"a": "1"}).idempotency_payload()
    assert base.idempotency_payload() == request(metadata={"a": "1"}, request_id="r").idempotency_payload()


def test_key_is_completion_id_plus_sha256_of_canonical_json() -> None:
    payload = request(metadata={"b": "2", "a": "1"}).idempotency_payload()
    canonical = json.dumps(
        {"metadata": {"a": "1", "b": "2"}, "mode": "merge", "remove": []}, sort_keys=True, separators=(",", ":")
    )
    assert payload == {"completion_id": "c1", "request_sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def test_result_details_round_trip_through_the_idempotency_store() -> None:
    tagged = TaggedDetail(completion_id="c", metadata={"a": "1"}, mode="merge", request_id=None, message_id="m")
    failed = TagFailedDetail(
        completion_id=None,
        request_id=None,
        message_id="m",
        error={"code": "not_found", "message": "gone", "retryable": False, "status": 404},
    )
    for detail in (tagged, failed):
        assert detail_from_dict(json.loads(detail.model_dump_json())) == detail
    assert (detail_type_of(tagged), detail_type_of(failed)) == ("CompletionTagged", "CompletionTagFailed")


def test_event_details_have_exactly_the_documented_fields() -> None:
    tagged = TaggedDetail(completion_id="c", metadata={}, mode="replace", request_id="r", message_id="m")
    assert set(json.loads(tagged.model_dump_json())) == {
        "completion_id",
        "metadata",
        "mode",
        "request_id",
        "message_id",
    }
    failed = TagFailedDetail(
        completion_id="c", request_id=None, message_id="m", error={"code": "timeout", "message": "x", "retryable": True}
    )
    document = json.loads(failed.model_dump_json())
    assert set(document) == {"completion_id", "request_id", "message_id", "error"}
    assert document["error"] == {"code": "timeout", "message": "x", "retryable": True, "status": None}


def test_issued_at_is_not_part_of_the_key() -> None:
    stamped = request(metadata={"a": "1"}, issued_at="2026-12-04T15:12:38.913456Z")
    assert stamped.idempotency_payload() == request(metadata={"a": "1"}).idempotency_payload()


@pytest.mark.parametrize(
    ("issued_at", "micros"),
    [
        ("1970-01-01T00:00:01Z", 1_000_000),
        ("1970-01-01T00:00:01.5Z", 1_500_000),
        ("2026-12-04T15:12:38.913456Z", 1_796_397_158_913_456),
        ("2026-12-04T15:12:38.913456+00:00", 1_796_397_158_913_456),
    ],
)
def test_issued_at_is_read_as_an_exact_instant(issued_at: str, micros: int) -> None:
    assert request(metadata={"a": "1"}, issued_at=issued_at).issued_at_micros() == micros
    assert format_issued_at(micros).endswith("Z")
    assert to_micros(issued_at_instant(format_issued_at(micros))) == micros


@pytest.mark.parametrize(
    "issued_at",
    [
        "2026-12-04T15:12:38.9134567Z",  # nanoseconds
        "2026-12-04T16:12:38+01:00",  # not UTC
        "2026-12-04 15:12:38Z",  # no T
        "2026-12-04T15:12:38",  # no zone
        "2026-13-04T15:12:38Z",  # no such month
        1796397158,
    ],
)
def test_an_issued_at_that_is_not_utc_rfc3339_is_a_validation_error_naming_the_field(issued_at: object) -> None:
    with pytest.raises(ValidationError, match="issued_at"):
        request(metadata={"a": "1"}, issued_at=issued_at)


def test_remove_holds_at_most_64_keys() -> None:
    request(metadata={}, remove=[f"k{n}" for n in range(64)])
    with pytest.raises(ValidationError, match="remove"):
        request(metadata={}, remove=[f"k{n}" for n in range(65)])


def test_every_result_detail_model_has_one_registry_entry() -> None:
    assert sorted(event.detail.__name__ for event in RESULT_EVENTS) == sorted(
        model.__name__ for model in get_args(ResultDetail)
    )
