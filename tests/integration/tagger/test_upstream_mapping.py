"""An upstream event of a foreign shape becomes a tag through the example mapping rule
(examples/upstream-mapping.yaml): moto applies the rule's input transformer, the message lands on the
queue, and the real handler tags the completion."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from local_stack.lambda_context import LocalLambdaContext
from tests.integration.harness import Harness, Seeder, sqs_record

pytestmark = pytest.mark.integration

APPROVED_AT = "2026-12-04T15:12:38.913456Z"


def put_review_event(harness: Harness, detail: dict[str, Any], source: str = "review-app") -> str:
    response = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": harness.stack.event_bus_name,
                "Source": source,
                "DetailType": "ReviewApproved",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    return str(response["Entries"][0]["EventId"])


def receive(harness: Harness, wait_seconds: float = 2.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        messages = harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, MaxNumberOfMessages=10)
        if messages.get("Messages"):
            return list(messages["Messages"])
        time.sleep(0.05)
    return []


def test_a_foreign_event_becomes_a_tag_through_the_mapping_rule(harness: Harness, seed: Seeder) -> None:
    completion_id = seed({"project": "demo"})

    event_id = put_review_event(
        harness,
        {
            "completion": completion_id,
            "verdict": "approved",
            "reviewer": "ana",
            "approved_at": APPROVED_AT,
            "score": 0.93,
        },
    )

    messages = receive(harness)
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {
        "completion_id": completion_id,
        "metadata": {"verdict": "approved", "reviewed-by": "ana"},
        "request_id": event_id,
        "issued_at": APPROVED_AT,
    }
    record = sqs_record(messages[0], harness.stack.queue_arn, messages[0]["Body"], 1)
    response = harness.service().handle({"Records": [record]}, LocalLambdaContext(timeout_seconds=30), harness.metrics)  # type: ignore[arg-type]

    assert response["batchItemFailures"] == []
    assert harness.api.metadata_of(completion_id) == {"project": "demo", "verdict": "approved", "reviewed-by": "ana"}
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagged"
    assert event["detail"]["request_id"] == event_id


@pytest.mark.parametrize(
    ("detail", "source"),
    [
        # no reviewer, no approved_at: the template needs both
        ({"completion": "chatcmpl-x", "verdict": "approved", "approved_at": APPROVED_AT}, "review-app"),
        ({"completion": "chatcmpl-x", "verdict": "approved", "reviewer": "ana"}, "review-app"),
        (
            {"completion": "chatcmpl-x", "verdict": "approved", "reviewer": "ana", "approved_at": APPROVED_AT},
            "another-app",
        ),
    ],
)
def test_events_the_rule_does_not_match_never_reach_the_queue(
    harness: Harness, detail: dict[str, Any], source: str
) -> None:
    put_review_event(harness, detail, source=source)

    assert receive(harness, wait_seconds=0.5) == []
