"""Put tag requests on their way: straight onto the queue, or as upstream events on the bus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from local_stack.samples import TagRequest

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

BATCH_LIMIT = 10  # both SendMessageBatch and PutEvents take at most 10 entries


class SendError(RuntimeError):
    """A request could not be sent (SQS or EventBridge rejected an entry)."""


@dataclass(frozen=True)
class SendCounts:
    via_sqs: int
    via_eventbridge: int

    @property
    def total(self) -> int:
        return self.via_sqs + self.via_eventbridge


def send_requests(requests: Sequence[TagRequest], queue_url: str, event_bus_name: str, detail_type: str) -> SendCounts:
    """Send in order: SQS requests with SendMessageBatch, EventBridge ones with PutEvents.

    An EventBridge request's body becomes the event's `detail` with DetailType `detail_type` (the
    template's UpstreamDetailType), so it reaches the queue only through the upstream rule.
    """
    sqs: SQSClient = boto3.client("sqs")
    events: EventBridgeClient = boto3.client("events")
    direct = [request for request in requests if request.via == "sqs"]
    upstream = [request for request in requests if request.via == "eventbridge"]
    for start in range(0, len(direct), BATCH_LIMIT):
        chunk = direct[start : start + BATCH_LIMIT]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": request.body} for index, request in enumerate(chunk)],
        )
        if response.get("Failed"):
            raise SendError(f"SendMessageBatch rejected {len(response['Failed'])} message(s): {response['Failed']}")
    for start in range(0, len(upstream), BATCH_LIMIT):
        chunk = upstream[start : start + BATCH_LIMIT]
        result = events.put_events(
            Entries=[
                {
                    "EventBusName": event_bus_name,
                    "Source": request.source,
                    "DetailType": detail_type,
                    "Detail": request.body,
                }
                for request in chunk
            ]
        )
        if result.get("FailedEntryCount"):
            raise SendError(f"PutEvents rejected {result['FailedEntryCount']} event(s)")
    return SendCounts(via_sqs=len(direct), via_eventbridge=len(upstream))
