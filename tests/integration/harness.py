"""The integration tests' harness: the real service built against a test's stack, fed through the real queue,
and the helpers the tests share (request seeding, containers of the function, sending and reading queues).

The fixtures that hand these out live in conftest.py; tests import the types and helpers from here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Metrics

from local_openai.server import LocalOpenAIServer
from local_stack.container import ContainerSpec
from local_stack.fleet import container_spec
from local_stack.function_env import FunctionSettings
from local_stack.lambda_context import LocalLambdaContext
from local_stack.provision import EVENT_SOURCE, StackResources
from local_stack.sqs_records import lambda_sqs_record
from tagger.composition import create_service
from tagger.config import Settings
from tagger.logic.service import TaggerService
from tagger.ports import ORIGINAL_MESSAGE_ID

API_KEY = "sk-local-test-key-0123456789"
EVENTS = Path(__file__).resolve().parents[2] / "events"

StackMaker = Callable[..., StackResources]


@dataclass
class Harness:
    """Builds the real service against the test's stack, feeds it SQS events and reads result events."""

    stack: StackResources
    api: LocalOpenAIServer
    sqs: Any = field(default_factory=lambda: boto3.client("sqs"))
    metrics: Metrics = field(default_factory=lambda: Metrics(namespace="CompletionTaggerTest"))

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_base_url": self.api.base_url,
            "openai_api_key": API_KEY,
            "idempotency_table_name": self.stack.table_name,
            "event_bus_name": self.stack.event_bus_name,
            "max_receive_count": 5,
            "openai_timeout_seconds": 2.0,
            "time_reserve_millis": 500,
        }
        values.update(overrides)
        return Settings.model_validate(values)

    def service(self, session: boto3.session.Session | None = None, **overrides: Any) -> TaggerService:
        return create_service(self.settings(**overrides), session)

    def run(
        self,
        service: TaggerService,
        bodies: Sequence[str | dict[str, Any]],
        *,
        receive_count: int = 1,
        timeout_seconds: float = 30.0,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Send the bodies through the real queue, invoke with what SQS gave us; returns (response, records)."""
        records = self.deliver(bodies, receive_count=receive_count)
        context = LocalLambdaContext(timeout_seconds=timeout_seconds)
        response = service.handle({"Records": records}, context, self.metrics)  # type: ignore[arg-type]
        return dict(response), records

    def deliver(self, bodies: Sequence[str | dict[str, Any]], receive_count: int = 1) -> list[dict[str, Any]]:
        """Send each body, then receive it; records carry SQS's own SentTimestamp, in send order."""
        records = []
        for body in bodies:
            text = body if isinstance(body, str) else json.dumps(body)
            time.sleep(0.002)  # distinct SentTimestamps (milliseconds), so send order is the requests' order
            self.sqs.send_message(QueueUrl=self.stack.queue_url, MessageBody=text)
            message = self.sqs.receive_message(
                QueueUrl=self.stack.queue_url, MaxNumberOfMessages=1, AttributeNames=["SentTimestamp"]
            )["Messages"][0]
            records.append(sqs_record(message, self.stack.queue_arn, text, receive_count))
        return records

    def events(self, expected: int, wait_seconds: float = 5.0) -> list[dict[str, Any]]:
        """Result events delivered to the observer queue; waits for `expected`, then a moment for extras."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            batch = self.sqs.receive_message(
                QueueUrl=self.stack.observer_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.stack.observer_queue_url, ReceiptHandle=message["ReceiptHandle"])
            if len(found) >= expected and not batch:
                break
            if not batch:
                time.sleep(0.05)
        return found


def sqs_record(message: dict[str, Any], queue_arn: str, body: str, receive_count: int) -> dict[str, Any]:
    """The record Lambda would deliver for a received message (local_stack's builder), delivered for the
    `receive_count`th time; system attributes ReceiveMessage was not asked for are filled in as of now."""
    now = str(int(time.time() * 1000))
    attributes = {
        "SentTimestamp": now,
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": now,
        **message.get("Attributes", {}),
        "ApproximateReceiveCount": str(receive_count),
    }
    received = {
        "MessageId": message["MessageId"],
        "ReceiptHandle": message["ReceiptHandle"],
        "Body": body,
        "MD5OfBody": message["MD5OfBody"],
        "Attributes": attributes,
    }
    return lambda_sqs_record(received, queue_arn)


def failures(response: Mapping[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:20]}"


Seeder = Callable[..., str]


def fleet_spec(
    stack: StackResources,
    api: LocalOpenAIServer,
    *,
    max_receive_count: int = 5,
    batch_size: int = 10,
    batching_window_seconds: float = 0.0,
    function_timeout_seconds: float = 10.0,
    function_log: Path | None = None,
    **environment: str,
) -> ContainerSpec:
    """Containers of the real function on the test's stack and the local OpenAI server.

    Timings are short for tests (2 s API timeout, 0.5 s time reserve, backoff 1 s doubling up to 2 s);
    `environment` adds or overrides function variables, e.g. `OPENAI_TIMEOUT_SECONDS="1"`.
    """
    settings = FunctionSettings(
        openai_base_url=api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.table_name,
        event_bus_name=stack.event_bus_name,
        event_source=EVENT_SOURCE,
        max_receive_count=max_receive_count,
        max_concurrency=10,
        retry_backoff_base_seconds=1,
        retry_backoff_max_seconds=2,
        openai_timeout_seconds=2.0,
    )
    return container_spec(
        stack,
        settings,
        batch_size=batch_size,
        batching_window_seconds=batching_window_seconds,
        function_timeout_seconds=function_timeout_seconds,
        function_log=function_log,
        extra_environment={"TIME_RESERVE_MILLIS": "500", **environment},
    )


def send_bodies(queue_url: str, bodies: list[dict[str, Any]], *, one_by_one: bool = False) -> list[str]:
    """Send tag requests to the queue; their message ids in order.

    In batches of ten, or `one_by_one`: each in a call of its own, a few ms apart, so each has a
    `SentTimestamp` of its own and the send order is defined.
    """
    sqs = boto3.client("sqs")
    ids: list[str] = []
    size = 1 if one_by_one else 10
    for start in range(0, len(bodies), size):
        if one_by_one and start:
            time.sleep(0.005)
        chunk = bodies[start : start + size]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(number), "MessageBody": json.dumps(body)} for number, body in enumerate(chunk)],
        )
        assert not response.get("Failed"), response["Failed"]
        by_entry = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        ids.extend(by_entry[str(number)] for number in range(len(chunk)))
    return ids


def sample_environment(harness: Harness) -> dict[str, str]:
    """The function's environment as events/env.json gives it to `sam local`, pointed at the test's stack."""
    env: dict[str, str] = json.loads((EVENTS / "env.json").read_text())["TaggerFunction"]
    env.update(
        OPENAI_BASE_URL=harness.api.base_url,
        OPENAI_API_KEY=API_KEY,
        IDEMPOTENCY_TABLE_NAME=harness.stack.table_name,
        EVENT_BUS_NAME=harness.stack.event_bus_name,
        AWS_ENDPOINT_URL=harness.sqs.meta.endpoint_url,
    )
    return env


def seed_sample_completions(api: LocalOpenAIServer) -> None:
    """The completions the events/ samples tag (events/local-openai-seed.json)."""
    for completion in json.loads((EVENTS / "local-openai-seed.json").read_text())["completions"]:
        api.seed_completion(completion["id"], completion["metadata"])


def dead_lettered_identities(sqs: Any, queue_url: str) -> set[str]:
    """The dead-lettered requests, by identity (see `dead_lettered_messages`)."""
    return set(dead_lettered_messages(sqs, queue_url).values())


def dead_lettered_messages(sqs: Any, queue_url: str) -> dict[str, str]:
    """The dead-lettered messages: each one's own message id -> its identity. A copy the function re-queued
    carries its original's message id (README, "What happens to each message"), as an attribute; anything
    else is its own message."""
    identities: dict[str, str] = {}
    handles: list[str] = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in messages:
            original = (message.get("MessageAttributes") or {}).get(ORIGINAL_MESSAGE_ID, {}).get("StringValue")
            identities[message["MessageId"]] = original or message["MessageId"]
            handles.append(message["ReceiptHandle"])
    for handle in handles:  # visible again, for the redrive
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return identities
