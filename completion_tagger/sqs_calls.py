"""SQS calls the redrive, the local stack and the bench make alike: deleting messages, a queue's depth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_sqs.type_defs import MessageTypeDef

BATCH_LIMIT = 10  # ReceiveMessage, SendMessageBatch and DeleteMessageBatch take at most 10 messages

VISIBLE: QueueAttributeFilterType = "ApproximateNumberOfMessages"
IN_FLIGHT: QueueAttributeFilterType = "ApproximateNumberOfMessagesNotVisible"
DELAYED: QueueAttributeFilterType = "ApproximateNumberOfMessagesDelayed"


def delete_messages(sqs: SQSClient, queue_url: str, messages: Sequence[MessageTypeDef]) -> list[MessageTypeDef]:
    """DeleteMessageBatch in chunks of 10; returns the messages SQS deleted (the others were not).

    No call for no messages. An error of the call itself propagates (with the chunks before it deleted).
    """
    deleted: list[MessageTypeDef] = []
    for start in range(0, len(messages), BATCH_LIMIT):
        chunk = messages[start : start + BATCH_LIMIT]
        response = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)
            ],
        )
        deleted.extend(chunk[int(entry["Id"])] for entry in response.get("Successful", []))
    return deleted


@dataclass(frozen=True)
class QueueDepth:
    """Messages on a queue as SQS approximates them."""

    visible: int
    in_flight: int
    delayed: int  # 0 unless asked for

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def queue_depth(sqs: SQSClient, queue_url: str, *, include_delayed: bool = False) -> QueueDepth:
    """One GetQueueAttributes call: visible and in-flight messages, and the delayed ones if asked for."""
    names = [VISIBLE, IN_FLIGHT, DELAYED] if include_delayed else [VISIBLE, IN_FLIGHT]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    counts: dict[str, int] = {name: int(value) for name, value in attributes.items()}
    return QueueDepth(counts.get(VISIBLE, 0), counts.get(IN_FLIGHT, 0), counts.get(DELAYED, 0))
