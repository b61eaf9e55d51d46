"""Lambda's SQS record shape and its reading of partial batch responses (local_stack.sqs_records)."""

from __future__ import annotations

import pytest

from local_stack.lambda_context import LocalLambdaContext
from local_stack.sqs_records import lambda_sqs_event, read_batch_response

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:requests"

MESSAGE = {
    "MessageId": "m-1",
    "ReceiptHandle": "rh-1",
    "MD5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
    "Body": '{"completion_id": "chatcmpl-1"}',
    "Attributes": {
        "SenderId": "AIDAEXAMPLE",
        "SentTimestamp": "1700000000000",
        "ApproximateReceiveCount": "2",
        "ApproximateFirstReceiveTimestamp": "1700000000100",
    },
    "MD5OfMessageAttributes": "abc",
    "MessageAttributes": {
        "s": {"StringValue": "x", "DataType": "String"},
        "b": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
    },
}


def test_record_has_lambdas_shape() -> None:
    (record,) = lambda_sqs_event([MESSAGE], QUEUE_ARN, "us-east-1")["Records"]
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": '{"completion_id": "chatcmpl-1"}',
        "attributes": MESSAGE["Attributes"],
        "messageAttributes": {
            "s": {"stringValue": "x", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
        "md5OfMessageAttributes": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def test_record_without_system_attributes_is_refused() -> None:
    message = {**MESSAGE, "Attributes": {"SenderId": "x"}}
    with pytest.raises(ValueError, match="AttributeNames=All"):
        lambda_sqs_event([message], QUEUE_ARN)


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}])
def test_complete_success(response: object) -> None:
    outcome = read_batch_response(response, ["a", "b"])
    assert outcome.failed_ids == frozenset()
    assert not outcome.whole_batch_failed


def test_partial_failure_puts_back_only_the_named_records() -> None:
    outcome = read_batch_response({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["a", "b"])
    assert outcome.failed_ids == {"b"}
    assert not outcome.whole_batch_failed


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "a"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": "a"},
        ["a"],
        "nonsense",
        {"batchItemFailures": [{"itemIdentifier": {"a"}}]},
    ],
)
def test_invalid_response_fails_the_whole_batch(response: object) -> None:
    outcome = read_batch_response(response, ["a", "b"])
    assert outcome.whole_batch_failed
    assert outcome.failed_ids == {"a", "b"}


def test_context_counts_down_from_the_timeout() -> None:
    now = [100.0]
    context = LocalLambdaContext(function_name="f", timeout_seconds=30, clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 30_000
    now[0] += 12.5
    assert context.get_remaining_time_in_millis() == 17_500
    now[0] += 60
    assert context.get_remaining_time_in_millis() == 0
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert context.function_name == "f"
    assert context.aws_request_id
    assert context.memory_limit_in_mb > 0
