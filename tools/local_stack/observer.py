"""Read result events from the observer queue (an EventBridge rule copies every result event there)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from completion_tagger.sqs_calls import delete_messages
from tagger.models import TAG_FAILED_DETAIL_TYPE, TAGGED_DETAIL_TYPE

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# The result events' detail types, as the function's registry of them names them.
TAGGED = TAGGED_DETAIL_TYPE
FAILED = TAG_FAILED_DETAIL_TYPE


@dataclass(frozen=True)
class ResultEvent:
    """One result event as EventBridge delivered it to the observer queue."""

    detail_type: str
    source: str
    detail: dict[str, Any]
    envelope: dict[str, Any] = field(default_factory=dict)  # the whole event as delivered; empty if unreadable

    @property
    def completion_id(self) -> str | None:
        value = self.detail.get("completion_id")
        return value if isinstance(value, str) else None

    @property
    def message_id(self) -> str | None:
        value = self.detail.get("message_id")
        return value if isinstance(value, str) else None

    @property
    def error(self) -> dict[str, Any]:
        error = self.detail.get("error")
        return error if isinstance(error, dict) else {}

    @property
    def error_code(self) -> str:
        return str(self.error.get("code") or "unknown")

    @property
    def retryable(self) -> bool:
        return bool(self.error.get("retryable"))


def parse_result_event(body: str) -> ResultEvent:
    """The EventBridge envelope on the queue → ResultEvent (an unreadable body gives detail_type "?")."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return ResultEvent(detail_type="?", source="?", detail={"raw": body[:200]})
    if not isinstance(envelope, dict):
        return ResultEvent(detail_type="?", source="?", detail={"raw": body[:200]})
    detail = envelope.get("detail")
    return ResultEvent(
        detail_type=str(envelope.get("detail-type", "?")),
        source=str(envelope.get("source", "?")),
        detail=detail if isinstance(detail, dict) else {},
        envelope=envelope,
    )


class ResultObserver:
    """Drains the observer queue without waiting; each event is read once and then deleted."""

    def __init__(self, queue_url: str, sqs: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._sqs: SQSClient = sqs if sqs is not None else boto3.client("sqs")

    def drain(self) -> list[ResultEvent]:
        events: list[ResultEvent] = []
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return events
            events.extend(parse_result_event(message["Body"]) for message in messages)
            delete_messages(self._sqs, self._queue_url, messages)
