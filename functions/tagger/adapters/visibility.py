"""Backoff across deliveries: a put-back record stays invisible for longer each time it comes back."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tagger.adapters.queue_urls import QueueUrls
from tagger.ports import PutBackRecord
from tagger.telemetry import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

MAX_VISIBILITY_SECONDS = 43200  # SQS' limit: 12 hours
MAX_ENTRIES_PER_CALL = 10


def backoff_seconds(
    receive_count: int, retry_after: float | None, base_seconds: int, max_seconds: int, *, longest: bool = False
) -> int:
    """The API's Retry-After when it gave one, else base × 2^(deliveries − 1); capped at `max_seconds` either way.
    `longest` (an exhausted quota, which only fixing the billing helps): the cap from the first delivery.

    The cap holds for Retry-After too: the configuration keeps MAX_RECEIVE_COUNT × RETRY_BACKOFF_MAX_SECONDS
    inside IDEMPOTENCY_EXPIRY_SECONDS (`tagger.config`), which an uncapped server-chosen wait would defeat.
    """
    if longest:
        delay = max_seconds
    elif retry_after is not None:
        delay = math.ceil(retry_after)
    else:
        delay = base_seconds * 2 ** max(receive_count - 1, 0)
    return int(min(delay, max_seconds, MAX_VISIBILITY_SECONDS))


class SqsVisibilityBackoff:
    """Sets the visibility of put-back records. Best effort: when it fails, the queue's own visibility
    timeout still brings the record back, so nothing is lost.

    The SQS client is made on first use: most invocations put nothing back, so a cold start need not pay
    for it.
    """

    def __init__(self, sqs_factory: Callable[[], SQSClient], base_seconds: int, max_seconds: int):
        self._sqs_factory = sqs_factory
        self._sqs: SQSClient | None = None
        self._base_seconds = base_seconds
        self._max_seconds = max_seconds
        self._queue_urls = QueueUrls()

    def apply(self, records: Sequence[PutBackRecord]) -> None:
        if not records:
            return
        by_queue: dict[str, list[PutBackRecord]] = {}
        for record in records:
            by_queue.setdefault(record.queue_arn, []).append(record)
        for queue_arn, queued in by_queue.items():
            try:
                self._apply_to_queue(queue_arn, queued)
            except (ClientError, BotoCoreError, ValueError) as error:
                logger.warning(
                    "could not change the visibility of put-back records",
                    extra={"error": type(error).__name__, "records": len(queued)},
                )

    def _apply_to_queue(self, queue_arn: str, records: list[PutBackRecord]) -> None:
        if self._sqs is None:
            self._sqs = self._sqs_factory()
        sqs = self._sqs
        queue_url = self._queue_urls.url(sqs, queue_arn)
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "ReceiptHandle": record.receipt_handle,
                # On the last delivery the message is due for the dead-letter queue: don't hold it back.
                "VisibilityTimeout": 0
                if record.is_last_delivery
                else backoff_seconds(
                    record.receive_count,
                    record.retry_after,
                    self._base_seconds,
                    self._max_seconds,
                    longest=record.longest_backoff,
                ),
            }
            for index, record in enumerate(records)
        ]
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries[start : start + MAX_ENTRIES_PER_CALL]
            )
            if response.get("Failed"):
                logger.warning("some visibility changes failed", extra={"failed": len(response["Failed"])})
