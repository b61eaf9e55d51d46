"""Looking at a queue without consuming it: its depth, and which messages are on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from completion_tagger.sqs_calls import queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# Long enough to read a whole queue of a local run before the first message shows up again.
PEEK_HIDE_SECONDS = 30


def messages_on_queue(sqs: SQSClient, queue_url: str) -> int:
    """Messages on a queue: visible, in flight and delayed."""
    return queue_depth(sqs, queue_url, include_delayed=True).total


def peek_message_ids(sqs: SQSClient, queue_url: str) -> set[str]:
    """The ids of the visible messages on a queue (e.g. a dead-letter queue nobody consumes).

    Reads every visible message, hiding each while the rest are read, then makes them all visible
    again: nothing is deleted. Meant for queues without a consumer: a message a consumer holds is
    not visible and not seen.
    """
    handles: dict[str, str] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=PEEK_HIDE_SECONDS, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        handles.update({message["MessageId"]: message["ReceiptHandle"] for message in messages})
    entries = list(handles.values())
    for start in range(0, len(entries), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(number), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for number, handle in enumerate(entries[start : start + 10])
            ],
        )
    return set(handles)
