"""The client-side move's failure handling (completion_tagger.redrive.client_move), with a botocore Stubber.

The happy path and a crash between send and delete run against moto in
tests/integration/completion_tagger/test_redrive.py; here are the partial failures SQS reports in a batch
response, which moto never produces.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from completion_tagger.redrive.client_move import move_messages
from completion_tagger.redrive.queue_pair import QueuePair, RedriveError
from tagger.ports import COPY_GENERATION, ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/111122223333/tagger-dlq"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/111122223333/tagger-requests"
QUEUES = QueuePair(
    DLQ_URL,
    "arn:aws:sqs:us-east-1:111122223333:tagger-dlq",
    QUEUE_URL,
    "arn:aws:sqs:us-east-1:111122223333:tagger-requests",
)


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url="https://sqs.us-east-1.amazonaws.com",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def message(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "MessageId": f"m{number}",
        "ReceiptHandle": f"rh{number}",
        "Body": f'{{"completion_id": "c{number}", "metadata": {{"k": "v"}}}}',
        "MD5OfBody": "0" * 32,
        **extra,
    }


def expect_receive(stub: Stubber, messages: list[dict[str, Any]]) -> None:
    stub.add_response(
        "receive_message",
        {"Messages": messages} if messages else {},
        {
            "QueueUrl": DLQ_URL,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 0,
            "VisibilityTimeout": 60,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["AWSTraceHeader", "SentTimestamp"],
        },
    )


def assert_moved_alone(client: Any, stub: Stubber, received: dict[str, Any], sent: dict[str, Any]) -> None:
    """A move of the one message `received`: SendMessageBatch must carry exactly `sent`, then it is deleted."""
    expect_receive(stub, [received])
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "new1", "MD5OfMessageBody": "0" * 32}], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": [sent]},
    )
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": received["ReceiptHandle"]}]},
    )
    expect_receive(stub, [])

    result = move_messages(client, QUEUES, out=lambda line: None)

    assert (result.received, result.sent, result.deleted, result.clean) == (1, 1, 1, True)


def test_body_attributes_and_trace_header_are_sent_before_the_message_is_deleted(sqs: tuple[Any, Stubber]) -> None:
    client, stub = sqs
    received = message(
        1,
        Attributes={"AWSTraceHeader": "Root=1-abc"},
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR", "StringListValues": []},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00"},
        },
    )
    sent = {
        "Id": "0",
        "MessageBody": received["Body"],
        "MessageAttributes": {
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00"},
        },
        "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}},
    }

    assert_moved_alone(client, stub, received, sent)


def test_a_redriven_copy_keeps_its_identity_and_order_and_starts_its_copy_count_again(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stub = sqs
    identity_and_order = {
        ORIGINAL_MESSAGE_ID: {"DataType": "String", "StringValue": "m-original"},
        ORIGINAL_SENT_TIMESTAMP: {"DataType": "Number", "StringValue": "1764900000000"},
    }
    received = message(
        1,
        Attributes={"SentTimestamp": "1764900099000"},
        MessageAttributes={**identity_and_order, COPY_GENERATION: {"DataType": "Number", "StringValue": "3"}},
    )
    sent = {"Id": "0", "MessageBody": ANY, "MessageAttributes": identity_and_order}

    assert_moved_alone(client, stub, received, sent)


def test_a_message_the_queue_refused_stays_in_the_dead_letter_queue(sqs: tuple[Any, Stubber]) -> None:
    client, stub = sqs
    expect_receive(stub, [message(1), message(2)])
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "new1", "MD5OfMessageBody": "0" * 32}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
        },
        {"QueueUrl": QUEUE_URL, "Entries": ANY},
    )
    # Only the sent one is deleted; then the move stops rather than spin on a refusing queue.
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": "rh1"}]},
    )
    lines: list[str] = []

    result = move_messages(client, QUEUES, out=lines.append)

    assert (result.received, result.sent, result.deleted, result.send_failures) == (2, 1, 1, 1)
    assert not result.clean
    assert any("stay in the dead-letter queue" in line for line in lines)


def test_a_message_sent_but_not_deleted_is_never_sent_twice_in_one_run(sqs: tuple[Any, Stubber]) -> None:
    client, stub = sqs
    expect_receive(stub, [message(1)])
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "new1", "MD5OfMessageBody": "0" * 32}], "Failed": []},
        {"QueueUrl": QUEUE_URL, "Entries": ANY},
    )
    stub.add_response(
        "delete_message_batch",
        {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]},
        {"QueueUrl": DLQ_URL, "Entries": ANY},
    )
    # It comes round again (new receipt handle): deleted without another SendMessageBatch.
    expect_receive(stub, [message(1, ReceiptHandle="rh1-again")])
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": "rh1-again"}]},
    )
    expect_receive(stub, [])

    result = move_messages(client, QUEUES, out=lambda line: None)

    assert (result.received, result.sent, result.deleted, result.delete_failures) == (2, 1, 1, 1)


def test_max_messages_bounds_the_move(sqs: tuple[Any, Stubber]) -> None:
    client, stub = sqs
    stub.add_response(
        "receive_message",
        {"Messages": [message(1), message(2)]},
        {
            "QueueUrl": DLQ_URL,
            "MaxNumberOfMessages": 2,
            "WaitTimeSeconds": 0,
            "VisibilityTimeout": 60,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["AWSTraceHeader", "SentTimestamp"],
        },
    )
    stub.add_response(
        "send_message_batch",
        {
            "Successful": [
                {"Id": "0", "MessageId": "n1", "MD5OfMessageBody": "0" * 32},
                {"Id": "1", "MessageId": "n2", "MD5OfMessageBody": "0" * 32},
            ],
            "Failed": [],
        },
        {"QueueUrl": QUEUE_URL, "Entries": ANY},
    )
    stub.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
        {"QueueUrl": DLQ_URL, "Entries": ANY},
    )

    result = move_messages(client, QUEUES, max_messages=2, out=lambda line: None)

    assert result.moved == 2 and result.clean


@pytest.mark.parametrize(
    "queues",
    [
        QueuePair(DLQ_URL, QUEUES.dead_letter_queue_arn, DLQ_URL, QUEUES.dead_letter_queue_arn),
        QueuePair(DLQ_URL + ".fifo", QUEUES.dead_letter_queue_arn, QUEUE_URL + ".fifo", QUEUES.queue_arn),
    ],
)
def test_refuses_what_it_cannot_move_safely(sqs: tuple[Any, Stubber], queues: QueuePair) -> None:
    client, _ = sqs
    with pytest.raises(RedriveError):
        move_messages(client, queues, out=lambda line: None)
