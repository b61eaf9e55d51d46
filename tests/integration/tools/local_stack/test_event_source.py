"""The local SQS event source mapping against moto's server over HTTP, with small handlers of our own."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local_stack.aws_endpoint import MotoEndpoint, moto_environment
from local_stack.event_source import SqsEventSourceMapping
from local_stack.provision import StackNames, StackResources, StackSettings, provision

pytestmark = pytest.mark.integration

MAX_RECEIVE_COUNT = 3


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoEndpoint]:
    with moto_environment() as endpoint:
        yield endpoint


@pytest.fixture
def stack(moto_server: MotoEndpoint) -> StackResources:
    """A fresh set of queues, bus and rules (unique names) with a 1 s visibility timeout."""
    names = StackNames.with_prefix(f"t{uuid.uuid4().hex[:8]}-")
    settings = StackSettings(max_receive_count=MAX_RECEIVE_COUNT, visibility_timeout_seconds=1, with_table=False)
    return provision(names, settings)


@pytest.fixture
def sqs(moto_server: MotoEndpoint) -> Any:
    return boto3.client("sqs")


class Recorder:
    """A handler that records what it got and fails the records `fail(record)` says to."""

    def __init__(self, fail: Any = None, raise_on_call: set[int] | None = None, result: Any = "partial") -> None:
        self.events: list[dict[str, Any]] = []
        self.remaining: list[int] = []
        self.contexts: list[Any] = []
        self.times: list[float] = []
        self._fail = fail or (lambda record: False)
        self._raise_on_call = raise_on_call or set()
        self._result = result

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.times.append(time.monotonic())
        self.contexts.append(context)
        self.remaining.append(context.get_remaining_time_in_millis())
        if len(self.events) in self._raise_on_call:
            raise RuntimeError("boom")
        if self._result != "partial":
            return self._result
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if self._fail(r)]
        return {"batchItemFailures": failures}

    @property
    def bodies(self) -> list[list[str]]:
        return [[record["body"] for record in event["Records"]] for event in self.events]

    def records_for(self, body: str) -> list[dict[str, Any]]:
        return [r for event in self.events for r in event["Records"] if r["body"] == body]


def depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages on a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def drained(sqs: Any, queue_url: str) -> Any:
    return lambda: depth(sqs, queue_url) == (0, 0)


def test_handler_receives_lambdas_sqs_event_shape(stack: StackResources, sqs: Any) -> None:
    body = json.dumps({"completion_id": "chatcmpl-shape", "metadata": {"k": "v"}})
    sent = sqs.send_message(
        QueueUrl=stack.queue_url,
        MessageBody=body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "tag"},
            "size": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler, function_timeout_seconds=30)

    report = mapping.poll_once()

    assert report is not None and report.error is None
    (event,) = handler.events
    assert set(event) == {"Records"}
    (record,) = event["Records"]
    assert record["messageId"] == sent["MessageId"]
    assert isinstance(record["receiptHandle"], str) and record["receiptHandle"]
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == stack.queue_arn == mapping.queue_arn
    assert record["awsRegion"] == "us-east-1"
    attributes = record["attributes"]
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        attributes
    )
    assert attributes["ApproximateReceiveCount"] == "1"
    assert all(isinstance(value, str) for value in attributes.values())
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "tag", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "size": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {"binaryValue": "AP8=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    context = handler.contexts[0]
    assert 29_000 < handler.remaining[0] <= 30_000
    assert context.function_name and context.aws_request_id and context.memory_limit_in_mb
    assert context.invoked_function_arn.startswith("arn:aws:lambda:us-east-1:")
    # A success is deleted.
    assert depth(sqs, stack.queue_url) == (0, 0)
    assert mapping.deleted_message_ids == {sent["MessageId"]}


def test_batch_item_failures_are_put_back_and_redelivered(stack: StackResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="ok")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="retry-me")
    handler = Recorder(fail=lambda r: r["body"] == "retry-me" and r["attributes"]["ApproximateReceiveCount"] == "1")
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batch_size=10, batching_window_seconds=0.5)

    first = mapping.poll_once()
    assert first is not None and len(first.message_ids) == 2
    assert len(first.put_back) == 1 and len(first.deleted) == 1
    assert depth(sqs, stack.queue_url) == (0, 1)  # the failed one is in flight, not deleted

    assert mapping.run(until=drained(sqs, stack.queue_url), timeout_seconds=10)

    retried = handler.records_for("retry-me")
    assert [r["attributes"]["ApproximateReceiveCount"] for r in retried] == ["1", "2"]
    # It came back only once its 1 s visibility timeout had run out.
    assert handler.times[-1] - handler.times[0] >= 0.9
    assert len(handler.records_for("ok")) == 1
    stats = mapping.stats
    assert (stats.records_delivered, stats.records_deleted, stats.records_put_back) == (3, 2, 1)


def test_handler_may_shorten_the_visibility_of_a_record_it_puts_back(stack: StackResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="now-again")
    client = boto3.client("sqs")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        record = event["Records"][0]
        if record["attributes"]["ApproximateReceiveCount"] == "1":
            queue_url = client.get_queue_url(QueueName=record["eventSourceARN"].rsplit(":", 1)[1])["QueueUrl"]
            client.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
            return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
        return {"batchItemFailures": []}

    mapping = SqsEventSourceMapping(stack.queue_url, handler)
    mapping.poll_once()
    assert depth(sqs, stack.queue_url) == (1, 0)  # visible again at once
    assert mapping.poll_once() is not None
    assert depth(sqs, stack.queue_url) == (0, 0)


def test_a_raising_handler_fails_the_whole_batch(stack: StackResources, sqs: Any) -> None:
    for index in range(3):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f"m{index}")
    handler = Recorder(raise_on_call={1})
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batching_window_seconds=0.5)

    report = mapping.poll_once()

    assert report is not None
    assert report.error == "handler raised RuntimeError: boom"
    assert report.traceback and "RuntimeError: boom" in report.traceback
    assert report.deleted == frozenset() and len(report.put_back) == 3
    assert depth(sqs, stack.queue_url) == (0, 3)
    assert mapping.run(until=drained(sqs, stack.queue_url), timeout_seconds=10)
    assert sorted(r["attributes"]["ApproximateReceiveCount"] for r in handler.events[-1]["Records"]) == ["2"] * 3
    assert mapping.stats.failed_invocations == 1


@pytest.mark.parametrize("result", ["not an object", {"batchItemFailures": [{"itemIdentifier": "nope"}]}])
def test_an_invalid_response_fails_the_whole_batch(stack: StackResources, sqs: Any, result: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="x")
    mapping = SqsEventSourceMapping(stack.queue_url, Recorder(result=result))
    report = mapping.poll_once()
    assert report is not None and report.error
    assert depth(sqs, stack.queue_url) == (0, 1)


def test_a_handler_that_overruns_its_timeout_fails_the_batch(stack: StackResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="slow")

    def slow(event: dict[str, Any], context: Any) -> None:
        before = context.get_remaining_time_in_millis()
        time.sleep(0.3)
        assert context.get_remaining_time_in_millis() < before

    mapping = SqsEventSourceMapping(stack.queue_url, slow, function_timeout_seconds=0.2)
    report = mapping.poll_once()
    assert report is not None and report.error and report.error.startswith("Task timed out")
    assert depth(sqs, stack.queue_url) == (0, 1)


def test_a_message_failing_max_receive_count_times_lands_in_the_dead_letter_queue(
    stack: StackResources, sqs: Any
) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="poison")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="fine")
    handler = Recorder(fail=lambda r: r["body"] == "poison")
    mapping = SqsEventSourceMapping(stack.queue_url, handler)

    assert mapping.run(until=drained(sqs, stack.queue_url), timeout_seconds=15)

    poison = handler.records_for("poison")
    assert [r["attributes"]["ApproximateReceiveCount"] for r in poison] == ["1", "2", "3"]
    assert depth(sqs, stack.dead_letter_queue_url) == (1, 0)
    (moved,) = sqs.receive_message(QueueUrl=stack.dead_letter_queue_url)["Messages"]
    assert moved["Body"] == "poison" and moved["MessageId"] == poison[0]["messageId"]
    assert mapping.stats.records_put_back == MAX_RECEIVE_COUNT


def test_batch_size_is_respected(stack: StackResources, sqs: Any) -> None:
    sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(7)])
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batch_size=3, batching_window_seconds=0.5)

    assert mapping.run(until=drained(sqs, stack.queue_url), timeout_seconds=10)

    assert [len(bodies) for bodies in handler.bodies] == [3, 3, 1]
    assert sorted(body for bodies in handler.bodies for body in bodies) == [f"m{i}" for i in range(7)]


def test_batch_size_above_ten_gathers_several_receives(stack: StackResources, sqs: Any) -> None:
    for start in (0, 10):
        sqs.send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)],
        )
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batch_size=25, batching_window_seconds=1)
    mapping.poll_once()
    assert [len(bodies) for bodies in handler.bodies] == [20]


def test_the_batching_window_waits_for_late_records(stack: StackResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="early")
    late = threading.Timer(0.4, lambda: boto3.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody="late"))
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batch_size=10, batching_window_seconds=1.5)

    late.start()
    started = time.monotonic()
    mapping.poll_once()
    elapsed = time.monotonic() - started
    late.join()

    assert handler.bodies == [["early", "late"]]
    assert 1.4 <= elapsed < 3.0  # the batch was not full, so it waited out the window


def test_without_a_window_one_receive_makes_the_batch(stack: StackResources, sqs: Any) -> None:
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="alone")
    late = threading.Timer(0.4, lambda: boto3.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody="late"))
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler, batch_size=10, batching_window_seconds=0)

    late.start()
    mapping.poll_once()
    late.join()
    mapping.poll_once()

    assert handler.bodies == [["alone"], ["late"]]


def test_upstream_eventbridge_rule_delivers_the_event_to_the_queue(stack: StackResources, sqs: Any) -> None:
    events = boto3.client("events")
    detail = {"completion_id": "chatcmpl-upstream", "metadata": {"reviewed": "true"}}
    result = events.put_events(
        Entries=[
            {
                "EventBusName": stack.event_bus_name,
                "Source": "upstream.reviews",
                "DetailType": "CompletionTagRequested",
                "Detail": json.dumps(detail),
            },
            {
                "EventBusName": stack.event_bus_name,
                "Source": "upstream.reviews",
                "DetailType": "SomethingElse",
                "Detail": json.dumps(detail),
            },
        ]
    )
    assert result["FailedEntryCount"] == 0
    handler = Recorder()
    mapping = SqsEventSourceMapping(stack.queue_url, handler)

    assert mapping.run(until=drained(sqs, stack.queue_url), timeout_seconds=5)

    (bodies,) = handler.bodies
    (body,) = bodies  # only the matching detail-type was routed
    envelope = json.loads(body)
    assert envelope["detail-type"] == "CompletionTagRequested"
    assert envelope["source"] == "upstream.reviews"
    assert envelope["detail"] == detail


def test_result_events_reach_the_observer_queue(stack: StackResources, sqs: Any) -> None:
    events = boto3.client("events")
    events.put_events(
        Entries=[
            {
                "EventBusName": stack.event_bus_name,
                "Source": "completion-tagger",
                "DetailType": "CompletionTagged",
                "Detail": json.dumps({"completion_id": "c"}),
            }
        ]
    )
    (message,) = sqs.receive_message(QueueUrl=stack.observer_queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["detail-type"] == "CompletionTagged"
    assert depth(sqs, stack.queue_url) == (0, 0)  # a result event is not a tag request
