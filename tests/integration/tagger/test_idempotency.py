"""Idempotency (README "Tag requests"): no double writes, in-progress twins, the event in the idempotent unit."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local_stack.lambda_context import LocalLambdaContext
from tagger.models import TagRequest
from tests.integration.harness import Harness, Seeder, failures

pytestmark = pytest.mark.integration


def test_update_whose_event_was_lost_republishes_without_a_second_write(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    request = {"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}

    # First delivery: the update succeeds but EventBridge fails every entry (as it does in an outage).
    session = boto3.session.Session()

    def fail_entries(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        entries = json.loads(params["body"])["Entries"]
        return AWSResponse("https://events", 200, HTTPHeaders(), None), {
            "FailedEntryCount": len(entries),
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "failed"} for _ in entries],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    session.events.register("before-call.events.PutEvents", fail_entries)  # type: ignore[arg-type]
    broken = harness.service(session=session)
    response, [record] = harness.run(broken, [request])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["updates_by_completion"][completion] == 1
    assert harness.events(0, wait_seconds=1.0) == []

    # Redelivery: the event is published from the stored result, with no second API call.
    calls_before = harness.api.stats()["total"]
    response, [record] = harness.run(harness.service(), [request], receive_count=2)
    assert response == {"batchItemFailures": []}
    assert harness.api.stats()["total"] == calls_before
    event = harness.events(1)
    assert [e["detail-type"] for e in event] == ["CompletionTagged"]
    assert event[0]["detail"]["metadata"] == {"a": "1"}

    # And it is now a plain duplicate: nothing more is published.
    response, _ = harness.run(harness.service(), [request], receive_count=3)
    assert response == {"batchItemFailures": []}
    assert harness.events(0, wait_seconds=1.0) == []


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_twin_in_progress_does_not_write_twice(harness: Harness, seed: Seeder, leases: bool) -> None:
    completion = seed()
    request = {"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}
    harness.api.configure(latency=0.6)
    first, second = harness.service(completion_leases=leases), harness.service(completion_leases=leases)
    [record_1] = harness.deliver([request])
    [record_2] = harness.deliver([request])
    responses: dict[str, Any] = {}

    def invoke(name: str, service: Any, record: dict[str, Any]) -> None:
        responses[name] = service.handle({"Records": [record]}, LocalLambdaContext(timeout_seconds=30), harness.metrics)

    threads = [
        threading.Thread(target=invoke, args=("first", first, record_1)),
        threading.Thread(target=invoke, args=("second", second, record_2)),
    ]
    threads[0].start()
    threading.Event().wait(0.2)  # the first is mid-call when its twin arrives
    threads[1].start()
    for thread in threads:
        thread.join(20)

    assert harness.api.stats()["updates_by_completion"][completion] == 1
    assert failures(responses["first"]) == set()
    assert [e["detail-type"] for e in harness.events(1, wait_seconds=1.5)] == ["CompletionTagged"]
    if leases:
        # The twin waited for the completion's lease, then found the completed result: a duplicate.
        assert failures(responses["second"]) == set()
        return
    assert failures(responses["second"]) == {record_2["messageId"]}  # put back, to find the completed result

    harness.api.configure(latency=0.0)
    response = first.handle({"Records": [record_2]}, LocalLambdaContext(), harness.metrics)  # type: ignore[arg-type]
    assert failures(response) == set()
    assert harness.events(0, wait_seconds=1.0) == []


def test_idempotency_records_use_the_documented_table_shape(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    harness.run(
        harness.service(idempotency_expiry_seconds=3600, retry_backoff_max_seconds=600),
        [{"completion_id": completion, "metadata": {"a": "1"}}],
    )
    items = {
        item["id"]["S"]: item for item in boto3.client("dynamodb").scan(TableName=harness.stack.table_name)["Items"]
    }
    # With leases the completed requests live in the completion's own record, keyed by request hash: released
    # (no holder, nothing in flight), kept as long as the requests it orders.
    completion_record = items.pop(f"completion-tagger-completion#{completion}")
    assert "lease_owner" not in completion_record and "in_flight" not in completion_record
    assert "a" in completion_record["history"]["S"]
    request_hash = TagRequest.model_validate({"completion_id": completion, "metadata": {"a": "1"}}).request_hash()
    completed = json.loads(completion_record["completed"]["S"])
    assert list(completed) == [request_hash]
    assert completed[request_hash]["outcome"] == "tagged" and completed[request_hash]["published"] is True
    assert 3500 < int(completion_record["expiration"]["N"]) - time.time() <= 3600
    assert items == {}


def test_without_leases_idempotency_records_are_powertools_own(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    harness.run(
        harness.service(idempotency_expiry_seconds=3600, retry_backoff_max_seconds=600, completion_leases=False),
        [{"completion_id": completion, "metadata": {"a": "1"}}],
    )
    items = {
        item["id"]["S"]: item for item in boto3.client("dynamodb").scan(TableName=harness.stack.table_name)["Items"]
    }
    [request_key] = list(items)
    assert request_key.startswith("completion-tagger#")
    assert items[request_key]["status"]["S"] == "COMPLETED"
    assert 3500 < int(items[request_key]["expiration"]["N"]) - time.time() <= 3600


def test_permanent_failure_is_remembered_as_completed(harness: Harness) -> None:
    request = {"completion_id": "chatcmpl-never-stored", "metadata": {"a": "1"}, "mode": "replace"}
    harness.run(harness.service(), [request])
    assert [e["detail"]["error"]["code"] for e in harness.events(1)] == ["not_found"]
    calls = harness.api.stats()["total"]
    harness.run(harness.service(), [request])
    assert harness.api.stats()["total"] == calls
    assert harness.events(0, wait_seconds=1.0) == []


def test_retryable_failure_releases_the_key_so_a_retry_can_succeed(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    # A merge whose read fails: a write's 5xx would be an unknown outcome, kept leased while it settles.
    request = {"completion_id": completion, "metadata": {"a": "1"}}
    harness.api.inject_fault(503, count=3, retry_after_ms=1, method="GET")
    response, [record] = harness.run(harness.service(), [request])
    assert failures(response) == {record["messageId"]}
    response, _ = harness.run(harness.service(), [request], receive_count=2)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"a": "1"}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]


def test_no_record_starts_when_the_invocation_is_out_of_time(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    records = harness.deliver([{"completion_id": completion, "metadata": {"a": "1"}}])
    response = harness.service(time_reserve_millis=5000).handle(
        {"Records": records},
        LocalLambdaContext(timeout_seconds=2),  # type: ignore[arg-type]
        harness.metrics,
    )
    assert failures(response) == {records[0]["messageId"]}
    assert harness.api.stats()["total"] == 0
