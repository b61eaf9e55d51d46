"""Where valid requests go: the tag-request queue (`SendMessageBatch`) or an event bus (`PutEvents`).

A destination sends one batch (at most ten entries, within the call's size limit) and says which
entries failed and whether trying them again can help; batching, pacing and retries are `delivery.py`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import (
    ConnectionError as EndpointConnectionFailure,
)

from completion_tagger.validation import Outgoing

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

MAX_BATCH_ENTRIES = 10  # SendMessageBatch and PutEvents both take at most ten entries
MAX_BATCH_BYTES = 256 * 1024  # the payload limit of one SendMessageBatch or PutEvents call
# One message (SQS: 256 KiB on queues made before 2025 and what the stack's queue is sized for) or one
# PutEvents entry (256 KB as EventBridge counts it). A valid request is far smaller (about 160 KB at
# most, every limit of the request at its largest and every character escaped), so this is a last guard.
MAX_ENTRY_BYTES = 256 * 1024
DEFAULT_DETAIL_TYPE = "CompletionTagRequested"  # what the stack's upstream rule routes into the queue
DEFAULT_SOURCE = "completion-tagger.send"
# Call-level errors that a later attempt may get past; anything else stops the run (wrong queue, no access).
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestThrottled",
        "ThrottlingException",
        "Throttling",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
RETRYABLE_ENTRY_ERRORS = frozenset({"InternalFailure", "ThrottlingException", "InternalError", "ServiceUnavailable"})
# Transport errors after the request reached the destination: another attempt may get through. Any other
# BotoCoreError (no or expired credentials, an endpoint that cannot be reached even after botocore's own
# retries, a bad region or endpoint setting) fails every call alike, so it stops the run at the first one.
RETRYABLE_TRANSPORT_ERRORS = (ReadTimeoutError, ConnectionClosedError, ResponseStreamingError)


class DestinationError(RuntimeError):
    """The destination refused a whole call in a way no retry can fix (it does not exist, no permission)."""


@dataclass(frozen=True)
class EntryFailure:
    """One entry of a batch that was not accepted."""

    number: int
    reason: str
    retryable: bool


class Destination(Protocol):
    """Sends one batch of requests; returns the entries that failed."""

    description: str
    max_entry_bytes: int

    def entry_size(self, entry: Outgoing) -> int: ...

    def send_batch(self, entries: Sequence[Outgoing]) -> list[EntryFailure]: ...


class QueueDestination:
    """The tag-request queue: each request is one message."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.description = f"queue {queue_url}"
        self.message_ids: dict[int, str] = {}  # line number -> SQS message id, of every entry accepted
        self.max_entry_bytes = MAX_ENTRY_BYTES

    def entry_size(self, entry: Outgoing) -> int:
        return len(entry.body.encode("utf-8"))

    def send_batch(self, entries: Sequence[Outgoing]) -> list[EntryFailure]:
        try:
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(entry.number), "MessageBody": entry.body} for entry in entries],
            )
        except (ClientError, BotoCoreError) as error:
            return _call_failed(entries, error)
        self.message_ids.update((int(done["Id"]), done["MessageId"]) for done in response.get("Successful", []))
        return [
            EntryFailure(
                int(failed["Id"]),
                f"{failed.get('Code', 'error')}: {failed.get('Message', 'no message')}",
                retryable=not failed.get("SenderFault", False),
            )
            for failed in response.get("Failed", [])
        ]


class EventBusDestination:
    """An event bus: each request is the `detail` of an event the stack's upstream rule routes to the queue."""

    def __init__(
        self,
        events: EventBridgeClient,
        event_bus_name: str,
        detail_type: str = DEFAULT_DETAIL_TYPE,
        source: str = DEFAULT_SOURCE,
    ) -> None:
        self.events = events
        self.event_bus_name = event_bus_name
        self.detail_type = detail_type
        self.source = source
        self.description = f"event bus {event_bus_name} as {detail_type} events"
        self.event_ids: dict[int, str] = {}  # line number -> EventBridge event id, of every entry accepted
        self.max_entry_bytes = MAX_ENTRY_BYTES

    def entry_size(self, entry: Outgoing) -> int:
        # As EventBridge computes an entry's size: the UTF-8 bytes of Source, DetailType and Detail (and 14
        # bytes for Time and each Resources string, which the sender does not set).
        return sum(len(text.encode("utf-8")) for text in (entry.body, self.detail_type, self.source))

    def send_batch(self, entries: Sequence[Outgoing]) -> list[EntryFailure]:
        try:
            response = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.event_bus_name,
                        "Source": self.source,
                        "DetailType": self.detail_type,
                        "Detail": entry.body,
                    }
                    for entry in entries
                ]
            )
        except (ClientError, BotoCoreError) as error:
            return _call_failed(entries, error)
        self.event_ids.update(
            (entry.number, result["EventId"])
            for entry, result in zip(entries, response.get("Entries", []), strict=False)
            if result.get("EventId")
        )
        if not response.get("FailedEntryCount"):
            return []
        return [
            EntryFailure(
                entry.number,
                f"{result['ErrorCode']}: {result.get('ErrorMessage', 'no message')}",
                retryable=result["ErrorCode"] in RETRYABLE_ENTRY_ERRORS,
            )
            for entry, result in zip(entries, response.get("Entries", []), strict=False)
            if result.get("ErrorCode")
        ]


def _call_failed(entries: Sequence[Outgoing], error: ClientError | BotoCoreError) -> list[EntryFailure]:
    """Every entry of a failed call: retryable for throttling, server errors and a connection lost mid-call
    (after botocore's own retries), otherwise a DestinationError that ends the run."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code not in RETRYABLE_CALL_ERRORS and status < 500:
            raise DestinationError(str(error)) from None
    elif not isinstance(error, RETRYABLE_TRANSPORT_ERRORS):
        raise DestinationError(describe_setup_error(error)) from None
    return [EntryFailure(entry.number, str(error), retryable=True) for entry in entries]


def describe_setup_error(error: BotoCoreError) -> str:
    """What went wrong before the destination could answer, and where to look."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return f"AWS credentials: {error} (set AWS_PROFILE, or credentials in the environment or AWS configuration)"
    if isinstance(error, SSOError | TokenRetrievalError):
        return f"AWS SSO session: {error} (run: aws sso login)"
    if isinstance(error, EndpointConnectionFailure):
        return f"cannot reach AWS: {error} (check the endpoint, region, network or proxy)"
    return str(error)
