"""Every exception the function raises, and what each one means for a record.

Only `PutBack` reaches Powertools' batch processor (the record lands in `batchItemFailures`); the others
are raised by one part of the function and turned into an outcome by another (README, "What happens to
each message").
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Literal, get_args

from tagger.models import ErrorCode, ErrorInfo

# Error messages in result events are capped, so a detail stays a few KB (README, "Result events").
MAX_ERROR_MESSAGE_LENGTH = 1000


class ConfigurationError(RuntimeError):
    """Raised at start-up when the environment cannot configure the function."""


class InvalidTagRequest(ValueError):
    """The body can never become a valid tag request; retrying cannot help.

    `completion_id` and `request_id` are echoed back (truncated) when the body carried them as strings, so
    a producer can correlate the failure event even when its request was wrong.
    """

    def __init__(self, message: str, completion_id: str | None = None, request_id: str | None = None):
        super().__init__(message[:MAX_ERROR_MESSAGE_LENGTH])
        self.message = message[:MAX_ERROR_MESSAGE_LENGTH]
        self.completion_id = completion_id
        self.request_id = request_id


@dataclass(eq=False, repr=False)
class CompletionsApiError(Exception):
    """A failed API call, classified. `retry_after` is the server's requested wait in seconds, if any."""

    code: ErrorCode
    message: str
    _: KW_ONLY
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
    # A write may have reached the API and been applied (a read timeout, a connection cut mid-call).
    outcome_unknown: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def info(self) -> ErrorInfo:
        """The error as it appears in a `CompletionTagFailed` event."""
        return ErrorInfo(code=self.code, message=self.message, retryable=self.retryable, status=self.status)


class MergeTooLarge(ValueError):
    """The resulting metadata would exceed OpenAI's key limit; nothing is written."""


# Causes of a put-back that are our deployment's fault rather than the API's. Each has its own metric
# (`Error_<cause>`) and alarm, while the result event carries the interface's `upstream_error` with a
# message naming the cause (README, "Result events"; docs/operations.md).
PutBackCause = Literal["secret_unreadable", "event_bus_missing"]
PUT_BACK_CAUSES: tuple[PutBackCause, ...] = get_args(PutBackCause)


class ApiKeyUnavailable(RuntimeError):
    """The key could not be read; the record is put back (the secret may be mid-rotation, or unreadable).

    `aws_error_code` is the AWS error code of the failed read (`AccessDeniedException`...), when it was one.
    """

    def __init__(self, message: str, *, aws_error_code: str | None = None):
        super().__init__(message)
        self.aws_error_code = aws_error_code


class EventBusMissing(RuntimeError):
    """The bus the result events go to does not exist (PutEvents to it would answer success and drop them)."""

    def __init__(self, bus_name: str):
        super().__init__(f"the event bus {bus_name!r} for result events does not exist (EVENT_BUS_NAME)")
        self.bus_name = bus_name


class LeaseHeld(Exception):
    """Another request holds the completion's lease until `until_ms` (epoch milliseconds)."""

    def __init__(self, holder: str, until_ms: int):
        super().__init__(f"lease held by {holder}")
        self.holder = holder
        self.until_ms = until_ms


class LeaseLost(Exception):
    """The lease was no longer ours when we came to release or extend it (it had expired and was taken)."""


class LeaseStoreUnavailable(Exception):
    """DynamoDB did not answer (throttled, down, or denied): no lease, so no API write."""


class RequestBudgetUnavailable(Exception):
    """The fleet's shared request budget could not be read or booked (DynamoDB throttled, down or denied)."""


@dataclass(eq=False, repr=False)
class PutBack(Exception):
    """The record goes back to the queue (it lands in `batchItemFailures`) to be delivered again.

    `retry_after` is how long, in seconds, the record should stay away when that is known (the API's
    `Retry-After`, a write's settle window, a contended lease); otherwise the backoff across deliveries
    decides.
    """

    code: ErrorCode
    message: str
    _: KW_ONLY
    status: int | None = None
    retry_after: float | None = None
    # A write was sent and may still be applied: its completion stays leased until it has settled.
    outcome_unknown: bool = False
    # Put back only for contention, or for an event not yet published after an applied write: on the
    # last delivery the record is re-queued as a copy instead of being dead-lettered.
    requeue_on_last_delivery: bool = False
    cause: PutBackCause | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def metric_code(self) -> str:
        """What the put-back is counted as (`Error_<metric_code>`): its cause when it has one, else its code."""
        return self.cause or self.code

    @classmethod
    def from_api_error(cls, error: CompletionsApiError) -> PutBack:
        """A retryable API failure: the record comes back after the wait the API asked for, if any."""
        return cls(
            error.code,
            error.message,
            status=error.status,
            retry_after=error.retry_after,
            outcome_unknown=error.outcome_unknown,
        )

    @classmethod
    def from_key_unavailable(cls, error: ApiKeyUnavailable) -> PutBack:
        """Our side's fault (a secret mid-rotation, or one the role cannot read): the record waits, nothing is
        lost, and its own metric and alarm tell it apart from an API outage."""
        return cls("upstream_error", f"the API key is unavailable: {error}", cause="secret_unreadable")

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, retryable=True, status=self.status)
