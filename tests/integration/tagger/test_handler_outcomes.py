"""Every row of the README's outcome table, through the real service, against moto's server and the local OpenAI
server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import Harness, Seeder, failures, new_id

pytestmark = pytest.mark.integration


def writes(harness: Harness, completion_id: str) -> int:
    return int(harness.api.stats()["updates_by_completion"].get(completion_id, 0))


def api_calls(harness: Harness) -> int:
    return int(harness.api.stats()["total"])


def only(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(events) == 1, events
    return events[0]


def test_merge_updates_the_completion_keeping_its_other_keys(harness: Harness, seed: Seeder) -> None:
    completion = seed({"team": "core", "stale": "yes"})
    response, [record] = harness.run(
        harness.service(),
        [{"completion_id": completion, "metadata": {"reviewed": "true"}, "remove": ["stale"], "request_id": "r-1"}],
    )
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"team": "core", "reviewed": "true"}
    event = only(harness.events(1))
    assert event["detail-type"] == "CompletionTagged"
    assert event["source"] == "completion-tagger"
    assert event["detail"] == {
        "completion_id": completion,
        "metadata": {"team": "core", "reviewed": "true"},
        "mode": "merge",
        "request_id": "r-1",
        "message_id": record["messageId"],
    }


def test_replace_is_one_request_and_sets_exactly_what_was_given(harness: Harness, seed: Seeder) -> None:
    completion = seed({"old": "1"})
    response, _ = harness.run(
        harness.service(), [{"completion_id": completion, "metadata": {"new": "2"}, "mode": "replace"}]
    )
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"new": "2"}
    assert api_calls(harness) == 1
    assert only(harness.events(1))["detail"]["metadata"] == {"new": "2"}


def test_merge_that_changes_nothing_skips_the_write(harness: Harness, seed: Seeder) -> None:
    completion = seed({"a": "1"})
    harness.run(harness.service(), [{"completion_id": completion, "metadata": {"a": "1"}}])
    assert api_calls(harness) == 1  # the read only
    assert writes(harness, completion) == 0
    assert only(harness.events(1))["detail-type"] == "CompletionTagged"


def test_duplicate_makes_no_call_and_no_second_event(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    service = harness.service()
    harness.run(service, [{"completion_id": completion, "metadata": {"a": "1", "b": "2"}}])
    assert only(harness.events(1))["detail-type"] == "CompletionTagged"
    calls = api_calls(harness)

    # Same tags in another key order, from another message: the same request.
    response, _ = harness.run(service, ['{"metadata": {"b": "2", "a": "1"}, "completion_id": "' + completion + '"}'])
    assert response == {"batchItemFailures": []}
    assert api_calls(harness) == calls
    assert harness.events(0, wait_seconds=1.0) == []


def test_duplicate_is_recognised_by_another_container(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    request = {"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}
    harness.run(harness.service(), [request])
    harness.run(harness.service(), [request])
    assert writes(harness, completion) == 1
    assert len(harness.events(1, wait_seconds=1.0)) == 1


def test_invalid_body_fails_once_and_is_not_put_back(harness: Harness) -> None:
    response, [record] = harness.run(
        harness.service(), [{"completion_id": "c-1", "metdata": {"a": "1"}, "request_id": "r9"}]
    )
    assert response == {"batchItemFailures": []}
    event = only(harness.events(1))
    assert event["detail-type"] == "CompletionTagFailed"
    assert event["detail"]["completion_id"] == "c-1"
    assert event["detail"]["request_id"] == "r9"
    assert event["detail"]["message_id"] == record["messageId"]
    assert event["detail"]["error"]["code"] == "validation_error"
    assert event["detail"]["error"]["retryable"] is False
    assert event["detail"]["error"]["status"] is None
    assert "metdata" in event["detail"]["error"]["message"]
    assert api_calls(harness) == 0


def test_unreadable_body_fails_with_null_completion_id(harness: Harness) -> None:
    response, _ = harness.run(harness.service(), ["{not json"])
    assert response == {"batchItemFailures": []}
    detail = only(harness.events(1))["detail"]
    assert detail["completion_id"] is None
    assert detail["error"]["code"] == "validation_error"


def test_huge_invalid_message_yields_a_small_event(harness: Harness) -> None:
    huge = {"completion_id": "x" * 200_000, "metadata": {f"k{i}": "v" * 5000 for i in range(40)}}
    harness.run(harness.service(), [huge])
    event = only(harness.events(1))
    assert event["detail"]["error"]["code"] == "validation_error"
    assert len(json.dumps(event["detail"])) < 4096


def test_unknown_completion_is_not_found_and_not_retried(harness: Harness) -> None:
    completion = new_id()
    response, _ = harness.run(
        harness.service(), [{"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}]
    )
    assert response == {"batchItemFailures": []}
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"], error["status"]) == ("not_found", False, 404)


def test_merge_over_sixteen_keys_writes_nothing(harness: Harness, seed: Seeder) -> None:
    completion = seed({f"k{i}": "v" for i in range(15)})
    response, _ = harness.run(harness.service(), [{"completion_id": completion, "metadata": {"x": "1", "y": "2"}}])
    assert response == {"batchItemFailures": []}
    assert writes(harness, completion) == 0
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"], error["status"]) == ("invalid_request", False, None)
    assert "16" in error["message"]


@pytest.mark.parametrize("status", [400, 422])
def test_api_rejection_is_invalid_request(harness: Harness, seed: Seeder, status: int) -> None:
    completion = seed()
    harness.api.inject_fault(status, count=1)
    response, _ = harness.run(
        harness.service(), [{"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}]
    )
    assert response == {"batchItemFailures": []}
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"], error["status"]) == ("invalid_request", False, status)


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_is_put_back_silently_until_the_last_delivery(harness: Harness, seed: Seeder, status: int) -> None:
    completion = seed()
    request = {"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}
    harness.api.inject_fault(status, count=10)
    response, [record] = harness.run(harness.service(), [request])
    assert failures(response) == {record["messageId"]}
    assert harness.events(0, wait_seconds=1.0) == []

    response, [record] = harness.run(harness.service(), [request], receive_count=5)
    assert failures(response) == {record["messageId"]}
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"], error["status"]) == ("unauthorized", True, status)


def test_wrong_key_is_put_back_and_never_leaks(
    harness: Harness, seed: Seeder, caplog: pytest.LogCaptureFixture
) -> None:
    completion = seed()
    service = harness.service(openai_api_key="sk-wrong-key-abcdef123456")
    response, [record] = harness.run(service, [{"completion_id": completion, "metadata": {"a": "1"}}], receive_count=5)
    assert failures(response) == {record["messageId"]}
    event = only(harness.events(1))
    assert event["detail"]["error"]["code"] == "unauthorized"
    assert "sk-wrong-key-abcdef123456" not in str(event)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_transient_status_is_retried_inside_the_invocation(harness: Harness, seed: Seeder, status: int) -> None:
    # On the read: a write answered with a 5xx is not re-sent (its outcome is unknown; see test_faults.py).
    completion = seed()
    harness.api.inject_fault(status, count=1, retry_after_ms=50, method="GET")
    response, _ = harness.run(harness.service(), [{"completion_id": completion, "metadata": {"a": "1"}}])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"a": "1"}
    assert only(harness.events(1))["detail-type"] == "CompletionTagged"


@pytest.mark.parametrize(("status", "code"), [(503, "upstream_error"), (429, "rate_limited"), (408, "timeout")])
def test_persistent_transient_failure_is_put_back_then_dead_lettered_with_an_event(
    harness: Harness, seed: Seeder, status: int, code: str
) -> None:
    completion = seed()
    # A merge, which reads first: the read fails, so no write is ever sent (a write's 5xx is an unknown outcome).
    request = {"completion_id": completion, "metadata": {"a": "1"}}
    harness.api.inject_fault(status, count=100, retry_after_ms=10)
    response, [record] = harness.run(harness.service(), [request])
    assert failures(response) == {record["messageId"]}
    assert harness.events(0, wait_seconds=1.0) == []

    response, [record] = harness.run(harness.service(), [request], receive_count=5)
    assert failures(response) == {record["messageId"]}
    detail = only(harness.events(1))["detail"]
    assert detail["completion_id"] == completion
    assert (detail["error"]["code"], detail["error"]["retryable"], detail["error"]["status"]) == (code, True, status)


def test_slow_api_times_out_and_is_put_back(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    harness.api.inject_fault(None, count=3, delay=1.0)
    service = harness.service(openai_timeout_seconds=0.3)
    response, [record] = harness.run(
        service, [{"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}], receive_count=5
    )
    assert failures(response) == {record["messageId"]}
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"], error["status"]) == ("timeout", True, None)


def test_unreachable_api_is_a_connection_error(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    service = harness.service(openai_base_url="http://127.0.0.1:9/v1")
    response, [record] = harness.run(service, [{"completion_id": completion, "metadata": {"a": "1"}}], receive_count=5)
    assert failures(response) == {record["messageId"]}
    error = only(harness.events(1))["detail"]["error"]
    assert (error["code"], error["retryable"]) == ("connection_error", True)


def test_records_of_one_completion_apply_in_batch_order(harness: Harness, seed: Seeder) -> None:
    completion = seed({"base": "0"})
    bodies: list[str | dict[str, Any]] = [
        {"completion_id": completion, "metadata": {"step": "1", "first": "yes"}},
        {"completion_id": completion, "metadata": {"step": "2"}, "remove": ["base"]},
        {"completion_id": completion, "metadata": {"step": "3", "last": "yes"}},
    ]
    response, records = harness.run(harness.service(), bodies)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"step": "3", "first": "yes", "last": "yes"}
    by_message = {event["detail"]["message_id"]: event["detail"]["metadata"] for event in harness.events(3)}
    assert by_message[records[0]["messageId"]] == {"base": "0", "step": "1", "first": "yes"}
    assert by_message[records[1]["messageId"]] == {"step": "2", "first": "yes"}
    assert by_message[records[2]["messageId"]] == {"step": "3", "first": "yes", "last": "yes"}


def test_eventbridge_envelope_is_processed_like_a_plain_request(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    envelope = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CompletionTagRequested",
        "source": "acme.reviews",
        "account": "123456789012",
        "time": "2026-11-26T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"completion_id": completion, "metadata": {"via": "eventbridge"}, "request_id": "eb-1"},
    }
    response, _ = harness.run(harness.service(), [envelope])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"via": "eventbridge"}
    assert only(harness.events(1))["detail"]["request_id"] == "eb-1"


def test_mixed_batch_puts_back_only_what_can_still_succeed(harness: Harness, seed: Seeder) -> None:
    good, flaky = seed(), seed()
    harness.api.inject_fault(503, count=100, completion_id=flaky)
    response, records = harness.run(
        harness.service(),
        [
            {"completion_id": good, "metadata": {"a": "1"}},
            "nonsense",
            {"completion_id": flaky, "metadata": {"a": "1"}},
            {"completion_id": new_id(), "metadata": {"a": "1"}},
        ],
    )
    assert failures(response) == {records[2]["messageId"]}
    kinds = sorted((event["detail-type"], event["detail"].get("error", {}).get("code")) for event in harness.events(3))
    assert kinds == [
        ("CompletionTagFailed", "not_found"),
        ("CompletionTagFailed", "validation_error"),
        ("CompletionTagged", None),
    ]


def test_a_put_back_record_holds_back_the_later_records_of_its_completion(harness: Harness, seed: Seeder) -> None:
    completion, other = seed({"v": "0"}), seed()
    harness.api.inject_fault(503, count=3, completion_id=completion)  # exactly the first record's attempts
    response, records = harness.run(
        harness.service(),
        [
            {"completion_id": completion, "metadata": {"v": "1"}},
            {"completion_id": other, "metadata": {"a": "1"}},
            {"completion_id": completion, "metadata": {"v": "2"}},
        ],
    )
    # The second request for the completion would have succeeded, but applying it before the first
    # would break batch order: both go back and come again in order.
    assert failures(response) == {records[0]["messageId"], records[2]["messageId"]}
    assert harness.api.metadata_of(completion) == {"v": "0"}
    assert [e["detail"]["completion_id"] for e in harness.events(1)] == [other]
