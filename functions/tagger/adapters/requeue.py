"""Re-queueing a record as a copy (docs/design.md, "Concurrency and ordering"): on a last delivery, a record put
back only to wait (its completion busy, or its event not yet published after an applied write) is sent to its
queue again rather than run into the dead-letter queue.

The copy carries the original's message id and SentTimestamp as message attributes, so its events, its
idempotency decisions and its order are the original's. The producer's String and Number attributes go with
it while they fit SQS' ten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tagger.adapters.queue_urls import QueueUrls
from tagger.ports import COPY_GENERATION, ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP, RequeuedCopy
from tagger.telemetry import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

MAX_MESSAGE_ATTRIBUTES = 10  # SQS' limit


class SqsRequeue:
    """Sends copies with SQS SendMessage; the queue URL is looked up once per queue ARN."""

    def __init__(self, sqs_factory: Callable[[], SQSClient]):
        self._sqs_factory = sqs_factory
        self._sqs: SQSClient | None = None
        self._queue_urls = QueueUrls()

    def send_copy(self, record: RequeuedCopy) -> bool:
        try:
            if self._sqs is None:
                self._sqs = self._sqs_factory()
            self._sqs.send_message(
                QueueUrl=self._queue_urls.url(self._sqs, record.queue_arn),
                MessageBody=record.body,
                DelaySeconds=record.delay_seconds,
                MessageAttributes=copy_attributes(record),
            )
        except (ClientError, BotoCoreError, ValueError) as error:
            logger.error("could not re-queue the record as a copy", extra={"error": type(error).__name__})
            return False
        return True


def copy_attributes(record: RequeuedCopy) -> dict[str, MessageAttributeValueTypeDef]:
    """The copy's message attributes: identity and order first, then the producer's that fit."""
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        ORIGINAL_MESSAGE_ID: {"DataType": "String", "StringValue": record.message_id},
        ORIGINAL_SENT_TIMESTAMP: {"DataType": "Number", "StringValue": str(record.sent_timestamp_ms)},
        COPY_GENERATION: {"DataType": "Number", "StringValue": str(record.generation)},
    }
    for name, value in _producer_attributes(record.attributes):
        if len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
            logger.warning("a re-queued copy leaves out message attributes beyond SQS' ten", extra={"attribute": name})
            continue
        attributes[name] = value
    return attributes


def _producer_attributes(raw: Mapping[str, Any]) -> list[tuple[str, MessageAttributeValueTypeDef]]:
    kept: list[tuple[str, MessageAttributeValueTypeDef]] = []
    for name, attribute in sorted(raw.items()):
        if name in (ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP, COPY_GENERATION) or not isinstance(attribute, dict):
            continue
        data_type, value = attribute.get("dataType"), attribute.get("stringValue")
        if isinstance(data_type, str) and isinstance(value, str) and not data_type.startswith("Binary"):
            kept.append((name, {"DataType": data_type, "StringValue": value}))
    return kept
