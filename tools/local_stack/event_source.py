"""An SQS event source mapping like Lambda's, for running a handler locally against a real (moto) queue.

What it does, as Lambda does with `ReportBatchItemFailures`:
- polls with ReceiveMessage (at most 10 per call, long poll of at most 1 s, every attribute), and
  gathers up to `batch_size` records for at most `batching_window_seconds` after the first arrives;
- invokes the handler with a Lambda-shaped SQS event and a context whose remaining time counts down
  from the function timeout;
- deletes (DeleteMessageBatch) every record not named in `batchItemFailures`; the named ones stay in
  flight and come back when their visibility timeout ends (the handler may have changed it);
- if the handler raises, returns an invalid response or overruns its timeout, the whole batch fails
  and nothing is deleted.

Redrive to the dead-letter queue is the queue's own: moto applies the RedrivePolicy's maxReceiveCount
when a ReceiveMessage finds a visible message that has already been received that many times, and
moves it to the DLQ instead of returning it (as SQS does), so the poller does not emulate it.

Unlike Lambda, one poller invokes one batch at a time (no concurrent invocations), and a handler that
overruns its timeout is not stopped: its batch is failed after it returns.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import boto3

from completion_tagger.sqs_calls import delete_messages
from local_stack.account import REGION
from local_stack.lambda_context import LocalLambdaContext
from local_stack.sqs_records import BatchOutcome, lambda_sqs_event, read_batch_response

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], Any]

RECEIVE_MAX_MESSAGES = 10  # SQS's limit per ReceiveMessage
LONG_POLL_SECONDS = 1
MAX_BATCH_SIZE = 10_000  # Lambda's limit for standard queues
MAX_BATCHING_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class EventSourceStats:
    """Counters since the mapping was made."""

    invocations: int = 0
    records_delivered: int = 0
    records_deleted: int = 0
    records_put_back: int = 0
    failed_invocations: int = 0  # whole batch failed: raised, invalid response or timeout
    delete_errors: int = 0


@dataclass(frozen=True)
class BatchReport:
    """One invocation: which records went in, which were deleted or put back, and any whole-batch error."""

    message_ids: tuple[str, ...]
    deleted: frozenset[str]
    put_back: frozenset[str]
    error: str | None = None
    traceback: str | None = None
    duration_seconds: float = 0.0
    receive_counts: dict[str, int] = field(default_factory=dict)


class SqsEventSourceMapping:
    """Polls one queue and invokes one handler with it; call `poll_once()` or `run()` from one thread."""

    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        queue_arn: str | None = None,
        batch_size: int = 10,
        batching_window_seconds: float = 0.0,
        function_timeout_seconds: float = 30.0,
        function_name: str = "completion-tagger",
        region: str = REGION,
        sqs: SQSClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}, not {batch_size}")
        if not 0 <= batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
            raise ValueError(f"batching window must be 0..{MAX_BATCHING_WINDOW_SECONDS} s")
        if function_timeout_seconds <= 0:
            raise ValueError("function timeout must be positive")
        self._sqs: SQSClient = sqs if sqs is not None else boto3.client("sqs")
        self._queue_url = queue_url
        self._queue_arn = (
            queue_arn
            or self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        self._handler = handler
        self._batch_size = batch_size
        self._window = batching_window_seconds
        self._timeout = function_timeout_seconds
        self._function_name = function_name
        self._region = region
        self._clock = clock
        self._sleep = sleep
        self._stats = EventSourceStats()
        self._deleted_ids: set[str] = set()

    @property
    def queue_arn(self) -> str:
        return self._queue_arn

    @property
    def stats(self) -> EventSourceStats:
        return self._stats

    @property
    def deleted_message_ids(self) -> frozenset[str]:
        """Every message this mapping deleted, i.e. that ended without going to the dead-letter queue."""
        return frozenset(self._deleted_ids)

    def run(self, until: Callable[[], bool], timeout_seconds: float) -> bool:
        """Poll until `until()` is true (→ True) or `timeout_seconds` have passed (→ False)."""
        deadline = self._clock() + timeout_seconds
        while not until():
            if self._clock() >= deadline:
                return False
            self.poll_once()
        return True

    def poll_once(self) -> BatchReport | None:
        """Gather one batch and invoke the handler with it; None when the long poll found nothing."""
        messages = self._gather()
        if not messages:
            return None
        return self._invoke(messages)

    def _gather(self) -> list[MessageTypeDef]:
        batch = self._receive(min(RECEIVE_MAX_MESSAGES, self._batch_size), LONG_POLL_SECONDS)
        if not batch:
            return []
        window_ends = self._clock() + self._window
        while len(batch) < self._batch_size:
            remaining = window_ends - self._clock()
            if remaining <= 0:
                break
            wait = LONG_POLL_SECONDS if remaining >= LONG_POLL_SECONDS else 0
            more = self._receive(min(RECEIVE_MAX_MESSAGES, self._batch_size - len(batch)), wait)
            if more:
                batch = _merge(batch, more)
            elif wait == 0:
                self._sleep(min(remaining, 0.05))
        return batch

    def _receive(self, count: int, wait_seconds: int) -> list[MessageTypeDef]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _invoke(self, messages: list[MessageTypeDef]) -> BatchReport:
        ids = tuple(message["MessageId"] for message in messages)
        event = lambda_sqs_event(messages, self._queue_arn, self._region)
        context = LocalLambdaContext(
            function_name=self._function_name, timeout_seconds=self._timeout, region=self._region
        )
        started = self._clock()
        outcome, trace = self._call(event, context, ids)
        duration = self._clock() - started
        if not outcome.whole_batch_failed and duration > self._timeout:
            outcome = BatchOutcome(frozenset(ids), f"Task timed out after {duration:.2f} seconds")
        to_delete = [message for message in messages if message["MessageId"] not in outcome.failed_ids]
        deleted, delete_errors = self._delete(to_delete)
        self._deleted_ids.update(deleted)
        self._stats = replace(
            self._stats,
            invocations=self._stats.invocations + 1,
            records_delivered=self._stats.records_delivered + len(ids),
            records_deleted=self._stats.records_deleted + len(deleted),
            records_put_back=self._stats.records_put_back + len(outcome.failed_ids),
            failed_invocations=self._stats.failed_invocations + int(outcome.whole_batch_failed),
            delete_errors=self._stats.delete_errors + delete_errors,
        )
        return BatchReport(
            message_ids=ids,
            deleted=frozenset(deleted),
            put_back=outcome.failed_ids,
            error=outcome.whole_batch_error,
            traceback=trace,
            duration_seconds=duration,
            receive_counts={
                message["MessageId"]: int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
                for message in messages
            },
        )

    def _call(
        self, event: dict[str, Any], context: LocalLambdaContext, ids: tuple[str, ...]
    ) -> tuple[BatchOutcome, str | None]:
        try:
            response = self._handler(event, context)
        except Exception as error:  # the function failed: Lambda fails the whole batch
            return (
                BatchOutcome(frozenset(ids), f"handler raised {type(error).__name__}: {error}"),
                traceback.format_exc(),
            )
        return read_batch_response(response, ids), None

    def _delete(self, messages: list[MessageTypeDef]) -> tuple[list[str], int]:
        """Returns the deleted message ids and the number of messages not deleted."""
        deleted = delete_messages(self._sqs, self._queue_url, messages)
        return [message["MessageId"] for message in deleted], len(messages) - len(deleted)


def _merge(batch: list[MessageTypeDef], more: list[MessageTypeDef]) -> list[MessageTypeDef]:
    """Add newly received messages; a message received again replaces its older copy (newer handle)."""
    by_id = {message["MessageId"]: message for message in batch}
    for message in more:
        by_id[message["MessageId"]] = message
    return list(by_id.values())
