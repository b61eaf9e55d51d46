"""The client-side move, for emulators without the message-move task: receive, send, then delete."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.redrive.order import with_issued_at
from completion_tagger.redrive.queue_pair import QueuePair, RedriveError
from completion_tagger.sqs_calls import BATCH_LIMIT, delete_messages
from tagger.ports import COPY_GENERATION, ORIGINAL_SENT_TIMESTAMP

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
# One SendMessageBatch carries at most this many bytes of messages (bodies and attributes). SQS takes up to
# 1 MiB today; queues made before that, and other SQS implementations, take 256 KiB, which suits both. A
# message larger than this goes in a call of its own, where only the queue's own message size limit applies.
MAX_SEND_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class MoveResult:
    """What a client-side move did. `moved` messages are on the queue and gone from the dead-letter queue."""

    received: int
    sent: int
    deleted: int
    send_failures: int
    delete_failures: int
    send_errors: tuple[str, ...] = ()  # why sends were refused, each reason once

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
    errors: list[str] = []
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
        accepted, refused, reasons = _send_in_batches(sqs, queues.queue_url, to_send)
        failed = len(refused)
        sent += len(accepted)
        send_failures += failed
        errors.extend(reason for reason in reasons if reason not in errors)
        sent_ids.update(message["MessageId"] for message in accepted)
        _visible_again(sqs, queues.dead_letter_queue_url, refused)
        done, not_done = _delete(sqs, queues.dead_letter_queue_url, accepted + already_sent)
        deleted += done
        delete_failures += not_done
        if deleted // PROGRESS_EVERY_MESSAGES > (deleted - done) // PROGRESS_EVERY_MESSAGES:
            out(f"  moved {deleted} so far")
        if failed:
            break  # don't spin on a destination that refuses messages
    result = MoveResult(received, sent, deleted, send_failures, delete_failures, tuple(errors))
    for reason in errors:
        out(f"  SendMessageBatch refused: {reason}")
    if send_failures:
        out(f"  {send_failures} message(s) could not be sent; they stay in the dead-letter queue")
    if delete_failures:
        out(
            f"  {delete_failures} message(s) were sent but not deleted from the dead-letter queue; they will "
            "reappear there as duplicates of what was sent (idempotency absorbs a second delivery)"
        )
    return result


def _send_in_batches(
    sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]
) -> tuple[list[MessageTypeDef], list[MessageTypeDef], list[str]]:
    """Send in calls of at most MAX_SEND_BATCH_BYTES; returns (the accepted, the refused, why refused)."""
    accepted: list[MessageTypeDef] = []
    refused: list[MessageTypeDef] = []
    reasons: list[str] = []
    for batch in _by_size([(message, _entry(message)) for message in messages]):
        ok, not_ok, reason = _send(sqs, queue_url, batch)
        accepted += ok
        refused += not_ok
        if reason:
            reasons.append(reason)
    return accepted, refused, reasons


def _by_size(
    pairs: list[tuple[MessageTypeDef, SendMessageBatchRequestEntryTypeDef]],
) -> list[list[tuple[MessageTypeDef, SendMessageBatchRequestEntryTypeDef]]]:
    batches: list[list[tuple[MessageTypeDef, SendMessageBatchRequestEntryTypeDef]]] = []
    size = 0
    for pair in pairs:
        entry_size = _entry_size(pair[1])
        if not batches or size + entry_size > MAX_SEND_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(pair)
        size += entry_size
    return batches


def _original_sent_timestamp(message: MessageTypeDef) -> str | None:
    """When the request was sent: a copy the function re-queued (it only had to wait on its last delivery)
    carries its original's SentTimestamp as an attribute, since its own is later."""
    attribute = (message.get("MessageAttributes") or {}).get(ORIGINAL_SENT_TIMESTAMP)
    original = attribute.get("StringValue") if attribute else None
    return original or (message.get("Attributes") or {}).get("SentTimestamp")


def _entry(message: MessageTypeDef) -> SendMessageBatchRequestEntryTypeDef:
    """The message as SendMessageBatch takes it: its body (given its original SentTimestamp as `issued_at`
    where it has none, so it keeps its order), its attributes and its trace header.

    A redrive starts a new life, so the count of copies the function made of the message is left out: a
    copy dead-lettered after its last allowed re-queue may be re-queued again if it only has to wait. Its
    identity and order attributes stay.
    """
    body = with_issued_at(message["Body"], _original_sent_timestamp(message))
    entry: SendMessageBatchRequestEntryTypeDef = {"Id": "0", "MessageBody": body}
    attributes = {
        name: _attribute(value)
        for name, value in (message.get("MessageAttributes") or {}).items()
        if name != COPY_GENERATION
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    trace_header = (message.get("Attributes") or {}).get("AWSTraceHeader")
    if trace_header:
        entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}}
    return entry


def _entry_size(entry: SendMessageBatchRequestEntryTypeDef) -> int:
    """Bytes SQS counts toward the message size: the body, and each attribute's name, type and value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode("utf-8")) + len(value["DataType"].encode("utf-8"))
        if "StringValue" in value:
            size += len(value["StringValue"].encode("utf-8"))
        binary = value.get("BinaryValue", b"")
        size += len(binary) if isinstance(binary, bytes | str) else 0
    return size


def _send(
    sqs: SQSClient, queue_url: str, batch: list[tuple[MessageTypeDef, SendMessageBatchRequestEntryTypeDef]]
) -> tuple[list[MessageTypeDef], list[MessageTypeDef], str | None]:
    """One SendMessageBatch; returns (the accepted, the refused, why refused)."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for index, (_, entry) in enumerate(batch):
        numbered = entry.copy()
        numbered["Id"] = str(index)
        entries.append(numbered)
    messages = [message for message, _ in batch]
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (ClientError, BotoCoreError) as error:
        return [], messages, str(error)
    accepted_ids = {int(entry["Id"]) for entry in response.get("Successful", [])}
    failed = response.get("Failed", [])
    reason = "; ".join(sorted({f"{item.get('Code', 'error')}: {item.get('Message', 'no message')}" for item in failed}))
    accepted = [message for index, message in enumerate(messages) if index in accepted_ids]
    refused = [message for index, message in enumerate(messages) if index not in accepted_ids]
    return accepted, refused, reason or None


def _visible_again(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> None:
    """Messages that could not be sent become visible in the dead-letter queue at once, not after the move's
    visibility timeout, so a rerun sees them. Best effort: otherwise they reappear after that timeout."""
    for start in range(0, len(messages), BATCH_LIMIT):
        chunk = messages[start : start + BATCH_LIMIT]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                    for index, message in enumerate(chunk)
                ],
            )
        except (ClientError, BotoCoreError):
            return


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
