"""Put the run's tag requests on their way, through the code path users get (`completion-tagger send`'s
Python API): each request is validated with the function's models, sent in batches of ten with failed
entries retried, and a sample the sender refuses is named and not sent, as it would be for a user.

Two kinds of sample bypass the validation on purpose, each for what it shows: a `raw_body` (sent
verbatim, as by a producer that writes to the queue itself, to show the function's own validation),
and an upstream event of a foreign shape (put on the bus as its own system would, for a mapping rule).
Both still go through the sender's batching and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from completion_tagger import send_tag_requests
from completion_tagger.delivery import Delivery
from completion_tagger.destinations import (
    DEFAULT_DETAIL_TYPE,
    DEFAULT_SOURCE,
    Destination,
    EventBusDestination,
    QueueDestination,
)
from completion_tagger.validation import Outgoing
from local_stack.samples import TagRequest
from local_stack.waited_send import WaitedSend

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

REQUEST_ID_PREFIX = "local-stack"


class SendError(RuntimeError):
    """A request could not be sent (SQS or EventBridge rejected an entry)."""


@dataclass(frozen=True)
class SendCounts:
    via_sqs: int
    via_eventbridge: int
    refused: int = 0  # refused by the sender's validation, so never sent

    @property
    def total(self) -> int:
        return self.via_sqs + self.via_eventbridge


def send_requests(
    requests: Sequence[TagRequest],
    queue_url: str,
    event_bus_name: str,
    detail_type: str,
    say: Callable[[str], None] = print,
    waited: WaitedSend | None = None,
) -> SendCounts:
    """Send in order: tag requests to the queue, tag requests as `detail_type` events on the bus (the
    template's UpstreamDetailType, so they reach the queue only through the upstream rule), then the
    raw bodies and the foreign-shape events. Raises SendError if any request that was not refused
    could not be sent. With `waited`, the tag requests to the queue go through `send --wait` in the
    background instead (see `waited_send.py`)."""
    direct = [request for request in requests if request.via == "sqs"]
    upstream = [request for request in requests if request.via == "eventbridge" and request.detail_type is None]
    foreign = [request for request in requests if request.detail_type is not None]
    sqs: SQSClient = boto3.client("sqs")
    events: EventBridgeClient = boto3.client("events")

    validated = [r for r in direct if not r.raw]
    if waited is not None and validated:
        refused = WaitedSend.refused([request.body for request in validated])
        for rejected in refused:
            say(f"  refused by the sender, not sent: {validated[rejected.number - 1].label}: {rejected.reason}")
        waited.start([request.body for request in validated], queue_url)
        refused_direct = len(refused)
    else:
        refused_direct = _send_validated(validated, say, queue_url=queue_url)
    refused_upstream = 0
    for source in dict.fromkeys(request.source for request in upstream):
        group = [request for request in upstream if request.source == source]
        refused_upstream += _send_validated(
            group, say, event_bus=event_bus_name, detail_type=detail_type, source=source
        )
    _send_unvalidated([r for r in direct if r.raw], QueueDestination(sqs, queue_url))
    for request in foreign:
        assert request.detail_type is not None
        _send_unvalidated([request], EventBusDestination(events, event_bus_name, request.detail_type, request.source))
    return SendCounts(
        via_sqs=len(direct) - refused_direct,
        via_eventbridge=len(upstream) - refused_upstream + len(foreign),
        refused=refused_direct + refused_upstream,
    )


def _send_validated(
    requests: Sequence[TagRequest],
    say: Callable[[str], None],
    *,
    queue_url: str | None = None,
    event_bus: str | None = None,
    detail_type: str = DEFAULT_DETAIL_TYPE,
    source: str = DEFAULT_SOURCE,
) -> int:
    """Through `send_tag_requests`; returns how many the sender refused (each is named)."""
    if not requests:
        return 0
    report = send_tag_requests(
        [request.body for request in requests],
        queue_url=queue_url,
        event_bus=event_bus,
        detail_type=detail_type,
        source=source,
        request_id_prefix=REQUEST_ID_PREFIX,
    )
    for rejected in report.invalid:
        say(f"  refused by the sender, not sent: {requests[rejected.number - 1].label}: {rejected.reason}")
    if report.failed or report.stopped:
        reasons = [item.reason for item in report.failed] + ([report.stopped] if report.stopped else [])
        raise SendError(f"{len(report.failed)} request(s) could not be sent: {'; '.join(reasons)}")
    return len(report.invalid)


def _send_unvalidated(requests: Sequence[TagRequest], destination: Destination) -> None:
    """Verbatim bodies through the sender's batching and retries, skipping only its validation."""
    delivery = Delivery(destination)
    tally = delivery.send(Outgoing(index, request.body, "") for index, request in enumerate(requests, start=1))
    if tally.failed:
        raise SendError(f"{len(tally.failed)} message(s) could not be sent: {tally.failed[0].reason}")
