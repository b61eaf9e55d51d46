"""The Python API: `send_tag_requests(...)`, what `completion-tagger send` runs.

from completion_tagger import send_tag_requests

report = send_tag_requests(
    [{"completion_id": "chatcmpl-abc123", "metadata": {"eval-set": "v3"}}],
    stack_name="completion-tagger-dev",
)
assert report.ok, report.problem_lines()
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from pydantic import BaseModel
from tqdm import tqdm

from completion_tagger.delivery import Delivery, RetryPolicy
from completion_tagger.destinations import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_SOURCE,
    Destination,
    DestinationError,
    EventBusDestination,
    QueueDestination,
)
from completion_tagger.event_bus_check import EventBusCheckError, check_event_bus_exists, stack_event_bus
from completion_tagger.pacing import Pacer
from completion_tagger.requests import Line, object_lines
from completion_tagger.send_report import SendInterrupted, SendReport
from completion_tagger.stack import QUEUE_URL_OUTPUT, StackError, stack_outputs
from completion_tagger.stamping import IssuedAtStamps
from completion_tagger.validation import Outgoing, check_request_id_prefix, validate
from completion_tagger.waiting.send_and_wait import (
    DEFAULT_TIMEOUT_SECONDS,
    ResultsLocation,
    ResultsLocationError,
    resolve_results_location,
    send_and_wait,
)

# `event_bus=STACK_EVENT_BUS` with `stack_name`: the stack's bus (its EventBusName output), through its
# upstream rule. Not a valid bus name, so it can never mean a bus of that name.
STACK_EVENT_BUS = "<the stack's>"

# botocore's own retries of whole calls (throttling, 5xx, connection errors), below ours of entries.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})


class UsageError(ValueError):
    """The arguments do not describe one destination, or a value is out of range."""


def send_tag_requests(
    requests: Iterable[str | Mapping[str, Any] | BaseModel],
    *,
    queue_url: str | None = None,
    stack_name: str | None = None,
    event_bus: str | None = None,
    session: boto3.session.Session | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    request_id_prefix: str | None = None,
    detail_type: str = DEFAULT_DETAIL_TYPE,
    source: str = DEFAULT_SOURCE,
    progress: bool = False,
    retry: RetryPolicy | None = None,
    wait: bool = False,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    results_location: ResultsLocation | None = None,
    results_file: Path | None = None,
) -> SendReport:
    """Validate each request with the function's models and send the valid ones to one destination.

    `requests` are JSON text, mappings or models (e.g. `tagger.models.TagRequest`); they are numbered
    from 1 in the report. Give exactly one of `queue_url`, `stack_name` (its `TagRequestQueueUrl`
    output) or `event_bus` (as `detail_type` events with `source`, through the stack's upstream
    rule; `event_bus=STACK_EVENT_BUS` with `stack_name`: the stack's bus, after checking that its upstream
    rule routes `source` and `detail_type`). A bus is checked to exist before anything is sent.
    Invalid requests (including objects that are not JSON, such as a `date` in `metadata`) are reported by
    number and never sent; a request without `request_id` gets
    `<request_id_prefix>-<number>`, and one without `issued_at` gets one strictly increasing in input order
    (decided once, kept when the entry is retried), so a later request for a completion wins. Nothing is
    sent on a dry run (and no destination is needed).
    `rate` caps requests per second; `retry` says how failed entries are tried again.

    Raises only `UsageError` (no or several destinations, a stack that cannot be read, no AWS region, a
    bad prefix or rate: before anything is sent) and `SendInterrupted` (Ctrl-C, with the report so far).

    `wait`: then follow the run's result events until every sent line has ended or `timeout_seconds` passed
    (`report.results`, and `results_file` as JSON Lines); the results are found through `stack_name`'s
    outputs, or `results_location`. `report.ok` is then true only when every line was tagged or a duplicate.
    """
    session = session or boto3.session.Session()
    destination = (
        None
        if dry_run
        else resolve_destination(
            session,
            queue_url=queue_url,
            stack_name=stack_name,
            event_bus=event_bus,
            detail_type=detail_type,
            source=source,
        )
    )
    location = None
    if wait and destination is not None:
        location = results_location or _results_location(session, stack_name)
    return send_and_maybe_wait(
        object_lines(requests),
        session,
        destination,
        location,
        rate=rate,
        request_id_prefix=request_id_prefix,
        progress=progress,
        retry=retry,
        timeout_seconds=timeout_seconds,
        results_file=results_file,
    )


def _results_location(session: boto3.session.Session, stack_name: str | None) -> ResultsLocation:
    try:
        return resolve_results_location(
            session, stack_name=stack_name, event_bus_name=None, dead_letter_queue_url=None, idempotency_table_name=None
        )
    except (ResultsLocationError, StackError) as error:
        raise UsageError(str(error)) from None


def send_and_maybe_wait(
    lines: Iterable[Line],
    session: boto3.session.Session,
    destination: Destination | None,
    location: ResultsLocation | None,
    *,
    rate: float | None,
    request_id_prefix: str | None,
    progress: bool,
    retry: RetryPolicy | None,
    timeout_seconds: float,
    results_file: Path | None,
    total: int | None = None,
    on_sent: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """`send --wait` when there is a destination and a place to follow its results (`location`): the run's
    results are followed from before the first line is sent (waiting/send_and_wait.py). Else a plain send (a
    dry run without a destination)."""

    def send(numbered: Iterable[Line], prefix: str | None) -> SendReport:
        return send_lines(
            numbered, destination, rate=rate, request_id_prefix=prefix, progress=progress, total=total, retry=retry
        )

    if destination is None or location is None:
        return send(lines, request_id_prefix)
    try:
        prefix = check_request_id_prefix(request_id_prefix or default_request_id_prefix())
    except ValueError as error:
        raise UsageError(str(error)) from None
    report, results = send_and_wait(
        lines,
        destination,
        location,
        session,
        send,
        prefix,
        timeout_seconds=timeout_seconds,
        progress=progress,
        on_sent=on_sent,
    )
    report.results = results
    if results_file is not None:
        results.write_jsonl(results_file)
    return report


def resolve_destination(
    session: boto3.session.Session,
    *,
    queue_url: str | None,
    stack_name: str | None,
    event_bus: str | None,
    detail_type: str = DEFAULT_DETAIL_TYPE,
    source: str = DEFAULT_SOURCE,
) -> Destination:
    """The one destination the arguments name; a stack's queue is read from its outputs. Raises UsageError
    (naming the cause) for anything that keeps the destination from being used: a stack that cannot be read,
    an AWS profile that does not exist."""
    try:
        return _destination(
            session,
            queue_url=queue_url,
            stack_name=stack_name,
            event_bus=event_bus,
            detail_type=detail_type,
            source=source,
        )
    except (StackError, EventBusCheckError) as error:
        raise UsageError(str(error)) from None
    except BotoCoreError as error:
        raise UsageError(f"AWS configuration: {error}") from None


def _destination(
    session: boto3.session.Session,
    *,
    queue_url: str | None,
    stack_name: str | None,
    event_bus: str | None,
    detail_type: str,
    source: str,
) -> Destination:
    through_stack_bus = event_bus == STACK_EVENT_BUS and bool(stack_name)
    given = [value for value in (queue_url, stack_name, event_bus) if value]
    if len(given) != 1 and not (through_stack_bus and len(given) == 2):
        raise UsageError("give exactly one destination: a queue URL, a stack name or an event bus")
    if event_bus == STACK_EVENT_BUS and not stack_name:
        raise UsageError("the stack's event bus: give the stack's name too")
    if session.region_name is None and not (queue_url and _region_of(queue_url)):
        raise UsageError("no AWS region: give --region, or set AWS_REGION or a region in your AWS configuration")
    if event_bus:
        if through_stack_bus:
            assert stack_name is not None
            cloudformation = session.client("cloudformation", config=_CLIENT_CONFIG)
            event_bus = stack_event_bus(cloudformation, stack_name, source, detail_type)
        events = session.client("events", config=_CLIENT_CONFIG)
        check_event_bus_exists(events, event_bus)
        return EventBusDestination(events, event_bus, detail_type, source)
    if stack_name:
        cloudformation = session.client("cloudformation", config=_CLIENT_CONFIG)
        queue_url = stack_outputs(cloudformation, stack_name, (QUEUE_URL_OUTPUT,))[QUEUE_URL_OUTPUT]
    assert queue_url is not None
    sqs = session.client("sqs", config=_CLIENT_CONFIG, region_name=_region_of(queue_url) or session.region_name)
    return QueueDestination(sqs, queue_url)


def _region_of(queue_url: str) -> str | None:
    """The region in an AWS queue URL (`https://sqs.<region>.amazonaws.com/...`), if it has one."""
    found = re.match(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com", queue_url)
    return found[1] if found else None


def send_lines(
    lines: Iterable[Line],
    destination: Destination | None,
    *,
    rate: float | None = None,
    request_id_prefix: str | None = None,
    progress: bool = False,
    total: int | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Validate and send numbered lines; `destination` None is a dry run. Never raises for a bad line."""
    try:
        prefix = check_request_id_prefix(request_id_prefix or default_request_id_prefix())
        pacer = Pacer(rate, sleep=sleep)
    except ValueError as error:
        raise UsageError(str(error)) from None
    report = SendReport(
        destination=destination.description if destination else "nowhere",
        request_id_prefix=prefix,
        dry_run=destination is None,
    )
    valid = _valid_only(lines, prefix, report, IssuedAtStamps())
    if destination is None:
        for _ in valid:
            pass
        return report
    # Quiet when not on a terminal (disable=None), and only on runs long enough to need it (delay).
    with tqdm(total=total, unit="req", disable=None if progress else True, delay=1.0, leave=False) as bar:
        delivery = Delivery(destination, pacer=pacer, retry=retry, on_progress=bar.update, sleep=sleep)
        try:
            delivery.send(valid)
        except DestinationError as error:
            report.stopped = str(error)
        except KeyboardInterrupt:
            report.stopped = "interrupted"
            _tally(report, delivery)
            raise SendInterrupted(report) from None
    _tally(report, delivery)
    return report


def _tally(report: SendReport, delivery: Delivery) -> None:
    report.sent = delivery.tally.sent
    report.failed = delivery.tally.failed
    report.calls = delivery.tally.calls


def default_request_id_prefix() -> str:
    """`send-<UTC time>-<16 hex>`: distinct per run (64 random bits), so result events of two runs, even
    started in the same second, never share ids."""
    return f"send-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(8)}"


def _valid_only(lines: Iterable[Line], prefix: str, report: SendReport, stamps: IssuedAtStamps) -> Iterator[Outgoing]:
    """The valid lines, each with its `issued_at` decided as it is read (so in line order, once)."""
    for line in lines:
        report.read += 1
        report.last_line = line.number
        checked = validate(line, prefix, stamps)
        if isinstance(checked, Outgoing):
            yield checked
        else:
            report.invalid.append(checked)
