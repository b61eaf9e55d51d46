"""The per-completion lease and key versions (docs/design.md, "Concurrency and ordering") in one container.

Each test drives the real service against moto's DynamoDB and the local OpenAI server; what several
containers do at once is in `test_concurrent_containers.py`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local_stack.lambda_context import LocalLambdaContext
from tagger.adapters.lease_store import DynamoDBLeaseStore
from tagger.errors import LeaseHeld, LeaseLost
from tagger.logic.completion_record import InFlight
from tagger.logic.key_versions import CompletionHistory
from tagger.logic.records import ParsedRecord
from tagger.logic.unit_of_work import IDEMPOTENCY_KEY_PREFIX
from tagger.models import TagRequest
from tagger.ports import COPY_GENERATION, ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP
from tests.integration.harness import Harness, Seeder, failures, sqs_record

pytestmark = pytest.mark.integration


def verdict(completion: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"completion_id": completion, "metadata": {"verdict": value}, **extra}


def lease_store(harness: Harness) -> DynamoDBLeaseStore:
    return DynamoDBLeaseStore(boto3.client("dynamodb"), harness.stack.table_name, history_ttl_seconds=3600)


def metric(harness: Harness, name: str) -> list[float]:
    return list(harness.metrics.metric_set.get(name, {}).get("Value", []))


@pytest.fixture(autouse=True)
def _fresh_metrics(harness: Harness) -> None:
    harness.metrics.clear_metrics()


# --- the lease itself, against DynamoDB ---------------------------------------------------------


def test_a_lease_is_exclusive_until_released_and_carries_the_history(harness: Harness) -> None:
    store = lease_store(harness)
    mine = store.acquire("chatcmpl-1", "container-a/m1", hold_ms=30_000)
    assert mine.history == CompletionHistory()

    with pytest.raises(LeaseHeld) as held:
        store.acquire("chatcmpl-1", "container-b/m2", hold_ms=30_000)
    assert held.value.holder == "container-a/m1"
    assert held.value.until_ms > time.time() * 1000

    store.release(mine, CompletionHistory(last_completed="m1"))
    theirs = store.acquire("chatcmpl-1", "container-b/m2", hold_ms=30_000)
    assert theirs.history == CompletionHistory(last_completed="m1")
    # Another completion's lease is independent.
    store.acquire("chatcmpl-2", "container-a/m3", hold_ms=30_000)


def test_a_retried_take_whose_first_attempt_landed_gets_the_lease_it_took(harness: Harness) -> None:
    store = lease_store(harness)
    intent = InFlight("m1", "container-a/m1/abc123", "h" * 64, "000000000000000001/m1", "merge", {"a": "1"}, ())
    store.acquire("chatcmpl-1", "container-a/m1/abc123", hold_ms=30_000, intent=intent)
    # botocore resends an UpdateItem whose answer was lost; the resend finds the lease held by its own owner.
    again = store.acquire("chatcmpl-1", "container-a/m1/abc123", hold_ms=30_000, intent=intent)
    assert again.in_flight == intent
    with pytest.raises(LeaseHeld):
        store.acquire("chatcmpl-1", "container-b/m2/def456", hold_ms=30_000)


def test_only_one_of_many_simultaneous_takers_gets_the_lease(harness: Harness) -> None:
    takers = 16
    barrier = threading.Barrier(takers)
    won: list[str] = []

    def take(owner: str) -> None:
        store = DynamoDBLeaseStore(boto3.session.Session().client("dynamodb"), harness.stack.table_name, 3600)
        barrier.wait()
        try:
            store.acquire("chatcmpl-hot", owner, hold_ms=30_000)
        except LeaseHeld:
            return
        won.append(owner)

    threads = [threading.Thread(target=take, args=(f"taker-{n}",)) for n in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1


def test_an_expired_lease_can_be_taken_and_its_old_holder_can_no_longer_release_it(harness: Harness) -> None:
    store = lease_store(harness)
    crashed = store.acquire("chatcmpl-1", "container-a/m1", hold_ms=200)
    time.sleep(0.3)
    taker = store.acquire("chatcmpl-1", "container-b/m2", hold_ms=30_000)
    with pytest.raises(LeaseLost):
        store.release(crashed, CompletionHistory(last_completed="m1"))
    with pytest.raises(LeaseLost):
        store.extend(crashed, 10_000)
    store.release(taker, CompletionHistory(last_completed="m2"))
    assert store.acquire("chatcmpl-1", "c/m3", hold_ms=1000).history.last_completed == "m2"


def test_extending_keeps_the_lease_past_its_first_expiry(harness: Harness) -> None:
    store = lease_store(harness)
    lease = store.acquire("chatcmpl-1", "container-a/m1", hold_ms=200)
    store.extend(lease, 30_000)
    time.sleep(0.3)
    with pytest.raises(LeaseHeld):
        store.acquire("chatcmpl-1", "container-b/m2", hold_ms=1000)


# --- ordering: the newest intent wins --------------------------------------------------------------


def test_approve_reject_approve_ends_approved(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    service = harness.service()
    for value in ("approve", "reject", "approve"):
        response, _ = harness.run(service, [verdict(completion, value)])
        assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"verdict": "approve"}
    events = harness.events(3)
    assert [e["detail"]["metadata"]["verdict"] for e in events] == ["approve", "reject", "approve"]


def test_an_older_request_retried_after_a_newer_one_changes_nothing(harness: Harness, seed: Seeder) -> None:
    completion = seed({"team": "x"})
    service = harness.service()
    approve, reject = harness.deliver([verdict(completion, "approve"), verdict(completion, "reject")])

    # approve's read fails every try, so it is put back before it writes (a write's 5xx would keep the lease
    # through its settle window, which is not what this test is about)
    harness.api.inject_fault(500, count=3, method="GET", retry_after_ms=1)
    response = service.handle({"Records": [approve]}, LocalLambdaContext(), harness.metrics)  # type: ignore[arg-type]
    assert failures(response) == {approve["messageId"]}
    response = service.handle({"Records": [reject]}, LocalLambdaContext(), harness.metrics)  # type: ignore[arg-type]
    assert failures(response) == set()

    approve["attributes"]["ApproximateReceiveCount"] = "2"  # the redelivery, after the newer request
    response = service.handle({"Records": [approve]}, LocalLambdaContext(), harness.metrics)  # type: ignore[arg-type]
    assert failures(response) == set()

    assert harness.api.metadata_of(completion) == {"team": "x", "verdict": "reject"}
    tagged = {e["detail"]["message_id"]: e["detail"] for e in harness.events(2)}
    assert tagged[approve["messageId"]]["superseded"] == ["verdict"]
    assert tagged[approve["messageId"]]["metadata"] == {"team": "x", "verdict": "reject"}
    assert "superseded" not in tagged[reject["messageId"]]
    assert metric(harness, "SupersededKeys") == [0.0, 0.0, 1.0]


def test_the_same_message_redelivered_after_a_newer_request_is_a_duplicate(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    service = harness.service()
    first, second = harness.deliver([verdict(completion, "approve"), verdict(completion, "reject")])
    for record in (first, second):
        assert failures(service.handle({"Records": [record]}, LocalLambdaContext(), harness.metrics)) == set()  # type: ignore[arg-type]
    writes = harness.api.stats()["updates_by_completion"][completion]

    first["attributes"]["ApproximateReceiveCount"] = "2"  # e.g. its delete was lost
    assert failures(service.handle({"Records": [first]}, LocalLambdaContext(), harness.metrics)) == set()  # type: ignore[arg-type]

    assert harness.api.metadata_of(completion) == {"verdict": "reject"}
    assert harness.api.stats()["updates_by_completion"][completion] == writes
    assert len(harness.events(2, wait_seconds=1.5)) == 2  # no third event
    assert metric(harness, "Duplicates")[-1] == 1.0


def test_a_replace_and_merges_in_one_batch_follow_their_send_order(harness: Harness, seed: Seeder) -> None:
    completion = seed({"outside": "x"})
    bodies = [
        {"completion_id": completion, "metadata": {"a": "1"}},
        {"completion_id": completion, "metadata": {"b": "2"}, "mode": "replace"},
        {"completion_id": completion, "metadata": {"c": "3"}, "remove": ["b"]},
    ]
    response, _ = harness.run(harness.service(), bodies)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"c": "3"}


# --- contention and failures ---------------------------------------------------------------------


def test_a_busy_completion_is_waited_for_inside_the_invocation(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    service = harness.service()
    lease_store(harness).acquire(completion, "crashed-container/m0", hold_ms=1000)  # expires by itself
    response, _ = harness.run(service, [verdict(completion, "approve")])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"verdict": "approve"}
    [waited_ms] = metric(harness, "LeaseWaitTime")
    assert waited_ms > 0
    assert metric(harness, "LeaseWaits") == [1.0]
    assert metric(harness, "LeaseContention") == [0.0]


def test_a_completion_busy_past_the_deadline_puts_back_its_records_in_order(
    harness: Harness, seed: Seeder, function_logs: Any
) -> None:
    busy, free = seed(), seed()
    lease_store(harness).acquire(busy, "other-container/m0", hold_ms=60_000)
    records = harness.deliver([verdict(busy, "approve"), verdict(free, "approve"), verdict(busy, "reject")])
    # The holder keeps its lease for a minute, far past what a request may wait (MAX_WAIT_SECONDS); the
    # invocation leaves the free completion room to finish on a loaded machine.
    response = harness.service(time_reserve_millis=500).handle(
        {"Records": records},
        LocalLambdaContext(timeout_seconds=6),  # type: ignore[arg-type]
        harness.metrics,
    )

    assert failures(response) == {records[0]["messageId"], records[2]["messageId"]}
    assert harness.api.metadata_of(busy) == {}
    assert harness.api.metadata_of(free) == {"verdict": "approve"}
    assert harness.api.stats()["total"] == 2  # the free completion's read and write: the busy one never touched
    assert metric(harness, "LeaseContention") == [1.0]
    assert '"lease_holder":"other-container/m0"' in function_logs.getvalue()
    assert harness.events(1, wait_seconds=1.0)[0]["detail"]["completion_id"] == free


def test_lease_store_throttled_puts_back_and_never_writes_without_the_lease(harness: Harness, seed: Seeder) -> None:
    session = boto3.session.Session()

    def throttle(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Code": "ThrottlingException", "Message": "Rate of requests exceeds the allowed throughput"}
        return AWSResponse("http://dynamodb", 400, HTTPHeaders(), None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    session.events.register("before-call.dynamodb.UpdateItem", throttle)  # type: ignore[arg-type]
    response, [record] = harness.run(harness.service(session=session), [verdict(seed(), "approve")])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["total"] == 0
    assert harness.events(0, wait_seconds=0.5) == []


def test_without_leases_no_completion_record_is_kept(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    response, _ = harness.run(harness.service(completion_leases=False), [verdict(completion, "approve")])
    assert response == {"batchItemFailures": []}
    ids = [item["id"]["S"] for item in boto3.client("dynamodb").scan(TableName=harness.stack.table_name)["Items"]]
    assert ids and all(not key.startswith("completion-tagger-completion#") for key in ids)


# --- what the lease makes redundant ----------------------------------------------------------------


def dynamodb_operations(session: boto3.session.Session) -> Counter[str]:
    calls: Counter[str] = Counter()
    session.events.register("before-call.dynamodb.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_a_request_costs_two_dynamodb_requests_and_no_read(harness: Harness, seed: Seeder) -> None:
    session = boto3.session.Session()
    calls = dynamodb_operations(session)
    service = harness.service(session=session)
    request = verdict(seed(), "approve")

    harness.run(service, [request])
    # take the lease and record the request in flight (returning the record), then record it completed
    assert calls == Counter({"UpdateItem": 1, "PutItem": 1})

    calls.clear()
    harness.run(service, [request])  # a duplicate: no API call, the same two requests
    assert calls == Counter({"UpdateItem": 1, "PutItem": 1})
    assert len(harness.events(1, wait_seconds=1.0)) == 1
    ids = [item["id"]["S"] for item in boto3.client("dynamodb").scan(TableName=harness.stack.table_name)["Items"]]
    assert ids == [f"completion-tagger-completion#{request['completion_id']}"]  # no separate idempotency record


def test_an_in_progress_marker_left_by_a_crashed_invocation_does_not_block_the_request(
    harness: Harness, seed: Seeder
) -> None:
    completion = seed()
    request = verdict(completion, "approve")
    leftover = DynamoDBPersistenceLayer(table_name=harness.stack.table_name)
    leftover.configure(IdempotencyConfig(hash_function="sha256"), key_prefix=IDEMPOTENCY_KEY_PREFIX)
    leftover.save_inprogress(TagRequest.model_validate(request).idempotency_payload(), remaining_time_in_millis=60_000)

    response, _ = harness.run(harness.service(), [request])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"verdict": "approve"}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]


# --- crash safety and re-queued copies, against DynamoDB and SQS ---------------------------------------


def test_a_write_left_in_flight_by_a_crashed_holder_is_settled_by_the_next_request(
    harness: Harness, seed: Seeder
) -> None:
    completion = seed({"verdict": "draft"})
    approve = verdict(completion, "approve")
    harness.run(harness.service(), [approve])  # completed: the last completed request
    [crashed] = harness.deliver([verdict(completion, "reject")])
    parsed = ParsedRecord(crashed, 0)
    # The crashed holder took the lease (recording its request in flight), wrote, and died.
    store = DynamoDBLeaseStore(boto3.client("dynamodb"), harness.stack.table_name, history_ttl_seconds=3600)
    owner = "dead-container/" + crashed["messageId"] + "/abc123"
    assert isinstance(parsed.request, TagRequest)
    store.acquire(completion, owner, 200, InFlight.of(parsed.request, parsed.identity, owner, parsed.order_token))
    harness.api.seed_completion(completion, {"verdict": "reject"})
    time.sleep(0.3)  # its lease runs out

    response, _ = harness.run(harness.service(), [approve])  # same content as the first: a new intent
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"verdict": "approve"}
    assert metric(harness, "UnsettledWritesSettled") == [0.0, 1.0]  # one value per invocation
    tagged = [event["detail"] for event in harness.events(2)]
    assert [detail["metadata"] for detail in tagged] == [{"verdict": "approve"}, {"verdict": "approve"}]

    # The crashed message comes back: it finds itself completed and publishes its event, with no write.
    updates = harness.api.stats()["updates_by_completion"][completion]
    crashed["attributes"]["ApproximateReceiveCount"] = "2"
    response = harness.service().handle({"Records": [crashed]}, LocalLambdaContext(timeout_seconds=30), harness.metrics)  # type: ignore[arg-type, assignment]
    assert response == {"batchItemFailures": []}
    assert harness.api.stats()["updates_by_completion"][completion] == updates
    [event] = harness.events(1)
    assert event["detail"]["message_id"] == crashed["messageId"]
    assert event["detail"]["metadata"] == {"verdict": "reject"}
    item = boto3.client("dynamodb").get_item(
        TableName=harness.stack.table_name, Key={"id": {"S": f"completion-tagger-completion#{completion}"}}
    )["Item"]
    assert "in_flight" not in item and "lease_owner" not in item


def test_contention_on_the_last_delivery_sends_a_copy_that_keeps_the_message_id(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    store = lease_store(harness)
    other = store.acquire(completion, "other-container/m0/abc123", hold_ms=60_000)
    service = harness.service(max_receive_count=5)
    response, [record] = harness.run(service, [verdict(completion, "approve")], receive_count=5, timeout_seconds=8)
    assert response == {"batchItemFailures": []}  # not dead-lettered, after a wait bounded well inside the 8 s
    assert metric(harness, "RequeuedCopies") == [1.0]
    # The original ends (the event source mapping deletes it); the copy arrives after its short delay.
    harness.sqs.delete_message(QueueUrl=harness.stack.queue_url, ReceiptHandle=record["receiptHandle"])
    [copy] = harness.sqs.receive_message(
        QueueUrl=harness.stack.queue_url,
        MessageAttributeNames=["All"],
        AttributeNames=["SentTimestamp"],
        WaitTimeSeconds=8,
    )["Messages"]
    assert copy["MessageId"] != record["messageId"] and copy["Body"] == record["body"]
    attributes = {name: value["StringValue"] for name, value in copy["MessageAttributes"].items()}
    assert attributes == {
        ORIGINAL_MESSAGE_ID: record["messageId"],
        ORIGINAL_SENT_TIMESTAMP: record["attributes"]["SentTimestamp"],
        COPY_GENERATION: "1",
    }

    store.release(other, CompletionHistory())
    copy_record = sqs_record(copy, harness.stack.queue_arn, copy["Body"], 1)
    copy_record["messageAttributes"] = {
        name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
        for name, value in copy["MessageAttributes"].items()
    }
    response = service.handle({"Records": [copy_record]}, LocalLambdaContext(timeout_seconds=30), harness.metrics)  # type: ignore[arg-type, assignment]
    assert response == {"batchItemFailures": []}
    [event] = harness.events(1)
    assert event["detail"]["message_id"] == record["messageId"]
