"""The idempotency key (README, "Idempotency") and the result event models (README, "Result events")."""

import hashlib
import json

import pytest

from tagger.models import TagFailedDetail, TaggedDetail, TagRequest, detail_from_dict, detail_type_of


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
