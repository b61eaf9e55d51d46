"""Send a run and wait for its results: the subscription is made before the first line is sent (so no
event can be missed) and removed when the wait ends, however it ends (docs/sending.md, "Waiting for the
results")."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import boto3

from completion_tagger.destinations import Destination, EventBusDestination, QueueDestination
from completion_tagger.requests import Line
from completion_tagger.send_report import SendReport
from completion_tagger.stack import stack_outputs
from completion_tagger.validation import Outgoing, validate
from completion_tagger.waiting.completed import CompletionRecords, EitherRecord, IdempotencyRecords
from completion_tagger.waiting.dead_letters import dead_lettered
from completion_tagger.waiting.follow import ResultSources, SentLine, follow
from completion_tagger.waiting.line_outcomes import LineResult, WaitReport
from completion_tagger.waiting.subscription import ResultSubscription, event_pattern
from tagger.logic.parsing import parse_tag_request

DEFAULT_TIMEOUT_SECONDS = 900.0
DEFAULT_EVENT_SOURCE = "completion-tagger"
EVENT_BUS_OUTPUT = "EventBusName"
DEAD_LETTER_QUEUE_OUTPUT = "TagRequestDeadLetterQueueUrl"
TABLE_OUTPUT = "IdempotencyTableName"


@dataclass(frozen=True)
class ResultsLocation:
    """Where a stack's results are: its result bus, dead-letter queue and idempotency table."""

    event_bus_name: str
    dead_letter_queue_url: str
    idempotency_table_name: str
    event_source: str = DEFAULT_EVENT_SOURCE

    @classmethod
    def of_stack(
        cls, cloudformation: Any, stack_name: str, event_source: str = DEFAULT_EVENT_SOURCE
    ) -> ResultsLocation:
        outputs = stack_outputs(cloudformation, stack_name, (EVENT_BUS_OUTPUT, DEAD_LETTER_QUEUE_OUTPUT, TABLE_OUTPUT))
        return cls(outputs[EVENT_BUS_OUTPUT], outputs[DEAD_LETTER_QUEUE_OUTPUT], outputs[TABLE_OUTPUT], event_source)


class ResultsLocationError(ValueError):
    """--wait cannot tell where the results are: no stack, and not all of the stack's names given."""


def resolve_results_location(
    session: boto3.session.Session,
    *,
    stack_name: str | None,
    event_bus_name: str | None,
    dead_letter_queue_url: str | None,
    idempotency_table_name: str | None,
    event_source: str = DEFAULT_EVENT_SOURCE,
) -> ResultsLocation:
    """From the stack's outputs, or from the names given (all three, when there is no stack)."""
    given = (event_bus_name, dead_letter_queue_url, idempotency_table_name)
    if stack_name and not any(given):
        return ResultsLocation.of_stack(session.client("cloudformation"), stack_name, event_source)
    if event_bus_name and dead_letter_queue_url and idempotency_table_name:
        return ResultsLocation(event_bus_name, dead_letter_queue_url, idempotency_table_name, event_source)
    raise ResultsLocationError(
        "--wait needs --stack-name, or all of --results-bus, --dead-letter-queue-url and --idempotency-table"
    )


SendLines = Callable[[Iterable[Line], str], SendReport]  # sends numbered lines with a request id prefix


def send_and_wait(
    lines: Iterable[Line],
    destination: Destination,
    location: ResultsLocation,
    session: boto3.session.Session,
    send: SendLines,
    request_id_prefix: str,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    progress: bool = False,
    on_sent: Callable[[SendReport], None] | None = None,
) -> tuple[SendReport, WaitReport]:
    """Subscribe to the run's result events, send, follow until every sent line has ended; then clean up.
    `on_sent` hears when the sending is over and the following begins."""
    numbered = list(lines)  # read once: the lines' own request ids go into the subscription's pattern
    own_ids = [
        checked.request_id
        for checked in (validate(line, request_id_prefix) for line in numbered)
        if isinstance(checked, Outgoing) and not checked.request_id.startswith(f"{request_id_prefix}-")
    ]
    sqs = session.client("sqs")
    subscription = ResultSubscription(
        session.client("events"),
        sqs,
        location.event_bus_name,
        event_pattern(location.event_source, request_id_prefix, own_ids),
    )
    with _interrupt_on_termination(), subscription:
        try:
            report = send(numbered, request_id_prefix)
        except KeyboardInterrupt:
            return SendReport(destination.description, request_id_prefix, stopped="interrupted"), WaitReport(
                lines=[LineResult(line.number, None, None, "not_sent", message="interrupted") for line in numbered],
                interrupted=True,
            )
        if on_sent is not None:
            on_sent(report)
        sent, not_sent = _split(numbered, destination, report, request_id_prefix)
        sources = ResultSources(
            subscription,
            location.event_source,
            _completed_requests(session.client("dynamodb"), location.idempotency_table_name),
            lambda: dead_lettered(sqs, location.dead_letter_queue_url),
        )
        waited = follow(sent, not_sent, sources, timeout_seconds=timeout_seconds, progress=progress)
    waited.leftovers = list(subscription.leftovers)
    return report, waited


def _completed_requests(dynamodb: Any, table_name: str) -> EitherRecord:
    """The per-completion record first (with leases, completed requests live there), then Powertools' own."""
    return EitherRecord(CompletionRecords(dynamodb, table_name), IdempotencyRecords(dynamodb, table_name))


def _split(
    lines: list[Line], destination: Destination, report: SendReport, prefix: str
) -> tuple[list[SentLine], list[LineResult]]:
    """The lines the destination accepted, and the others with why they were not sent."""
    if isinstance(destination, QueueDestination):
        accepted, message_ids = destination.message_ids, True
    elif isinstance(destination, EventBusDestination):
        accepted, message_ids = destination.event_ids, False
    else:
        accepted, message_ids = {}, False
    reasons = {item.number: f"invalid: {item.reason}" for item in report.invalid}
    reasons |= {item.number: f"not sent: {item.reason}" for item in report.failed}
    sent: list[SentLine] = []
    not_sent: list[LineResult] = []
    for line in lines:
        checked = validate(line, prefix)
        if line.number in accepted and isinstance(checked, Outgoing):
            request = parse_tag_request(checked.body)
            message_id = accepted[line.number] if message_ids else None
            sent.append(SentLine(line.number, request, checked.request_id, message_id))
        else:
            request_id = checked.request_id if isinstance(checked, Outgoing) else None
            reason = reasons.get(line.number) or f"not sent: {report.stopped or 'sending stopped'}"
            code = "validation_error" if line.number in {item.number for item in report.invalid} else "not_sent"
            not_sent.append(LineResult(line.number, request_id, None, "not_sent", code=code, message=reason))
    return sent, not_sent


@contextmanager
def _interrupt_on_termination() -> Iterator[None]:
    """SIGTERM ends the wait like Ctrl-C, so the clean-up runs then too (main thread only)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
