"""The client-side move, for emulators without the message-move task: receive, send, then delete."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.redrive.order import with_issued_at
from completion_tagger.redrive.queues import QueuePair, RedriveError
from completion_tagger.sqs_queues import BATCH_LIMIT, delete_messages

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

# How long a received dead-letter message stays hidden while it is being moved; if this run dies,
# it reappears in the dead-letter queue after this long.
MOVE_VISIBILITY_TIMEOUT_SECONDS = 60
PROGRESS_EVERY_MESSAGES = 100


@dataclass(frozen=True)
class MoveResult:
    """What a client-side move did. `moved` messages are on the queue and gone from the dead-letter queue."""

    received: int
    sent: int
    deleted: int
    send_failures: int
    delete_failures: int

    @property
    def moved(self) -> int:
        return self.deleted

    @property
    def clean(self) -> bool:
        """Every message received was sent and deleted."""
        return self.send_failures == 0 and self.delete_failures == 0


def move_messages(
    sqs: SQSClient,
    queues: QueuePair,
    *,
    max_messages: int | None = None,
    wait_seconds: int = 0,
    visibility_timeout_seconds: int = MOVE_VISIBILITY_TIMEOUT_SECONDS,
    out: Callable[[str], None] = print,
) -> MoveResult:
    """Move messages from the dead-letter queue to the queue: receive, send, then delete.

    Stops at the first empty receive, after `max_messages`, or when a send fails (what was not sent stays
    in the dead-letter queue, visible again after `visibility_timeout_seconds`). A message whose send
    succeeded but whose delete failed reappears in the dead-letter queue; if it comes round again in the
    same run it is deleted without being sent a second time.
    """
    if queues.dead_letter_queue_url == queues.queue_url or queues.dead_letter_queue_arn == queues.queue_arn:
        raise RedriveError("the dead-letter queue and the destination are the same queue")
    if queues.queue_url.endswith(".fifo") or queues.dead_letter_queue_url.endswith(".fifo"):
        raise RedriveError("FIFO queues are not supported by the client-side move")
    sent_ids: set[str] = set()
    received = sent = deleted = send_failures = delete_failures = 0
    while max_messages is None or received < max_messages:
        count = BATCH_LIMIT if max_messages is None else min(BATCH_LIMIT, max_messages - received)
        messages = sqs.receive_message(
            QueueUrl=queues.dead_letter_queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["AWSTraceHeader", "SentTimestamp"],
        ).get("Messages", [])
        if not messages:
            break
        received += len(messages)
        # Already sent in this run (its delete failed and it came back): delete only, never send twice.
        already_sent = [message for message in messages if message["MessageId"] in sent_ids]
        to_send = [message for message in messages if message["MessageId"] not in sent_ids]
        accepted, failed = _send(sqs, queues.queue_url, to_send)
        sent += len(accepted)
        send_failures += failed
        sent_ids.update(message["MessageId"] for message in accepted)
        done, not_done = _delete(sqs, queues.dead_letter_queue_url, accepted + already_sent)
        deleted += done
        delete_failures += not_done
        if deleted // PROGRESS_EVERY_MESSAGES > (deleted - done) // PROGRESS_EVERY_MESSAGES:
            out(f"  moved {deleted} so far")
        if failed:
            break  # don't spin on a destination that refuses messages
    result = MoveResult(received, sent, deleted, send_failures, delete_failures)
    if send_failures:
        out(f"  {send_failures} message(s) could not be sent; they stay in the dead-letter queue")
    if delete_failures:
        out(
            f"  {delete_failures} message(s) were sent but not deleted from the dead-letter queue; they will "
            "reappear there as duplicates of what was sent (idempotency absorbs a second delivery)"
        )
    return result


def _send(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> tuple[list[MessageTypeDef], int]:
    """SendMessageBatch with each message's body (given its original SentTimestamp as `issued_at` where it
    has none, so it keeps its order) and attributes; returns (the accepted, number refused)."""
    if not messages:
        return [], 0
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for index, message in enumerate(messages):
        body = with_issued_at(message["Body"], (message.get("Attributes") or {}).get("SentTimestamp"))
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": body}
        attributes = {name: _attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()}
        if attributes:
            entry["MessageAttributes"] = attributes
        trace_header = (message.get("Attributes") or {}).get("AWSTraceHeader")
        if trace_header:
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}}
        entries.append(entry)
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (ClientError, BotoCoreError):
        return [], len(messages)
    accepted = [messages[int(entry["Id"])] for entry in response.get("Successful", [])]
    return accepted, len(messages) - len(accepted)


def _attribute(value: Mapping[str, Any]) -> MessageAttributeValueTypeDef:
    """A received message attribute as SendMessage takes it (the list values are reserved by SQS)."""
    attribute: MessageAttributeValueTypeDef = {"DataType": str(value["DataType"])}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


def _delete(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> tuple[int, int]:
    """(deleted, not deleted); when the call fails, every message counts as not deleted."""
    try:
        done = len(delete_messages(sqs, queue_url, messages))
    except (ClientError, BotoCoreError):
        return 0, len(messages)
    return done, len(messages) - done
