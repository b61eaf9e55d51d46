"""A temporary subscription to a run's result events: an EventBridge rule on the stack's bus matching the
run's request ids, a temporary SQS queue as its target (with the queue policy that lets the rule send),
and the clean-up of all three.

`ResultSubscription` is a context manager: whatever it created is removed when the block is left, by an
exception, a Ctrl-C (KeyboardInterrupt) or normally. Creation is undone step by step too, so a failure
half-way leaves nothing behind.
"""

from __future__ import annotations

import json
import secrets
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tagger.result_events import RESULT_DETAIL_TYPES

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

NAME_PREFIX = "completion-tagger-wait-"
TARGET_ID = "wait-queue"
# EventBridge takes event patterns up to 4096 characters; the explicit ids a pattern lists stay well below.
MAX_PATTERN_CHARACTERS = 3500
RECEIVE_WAIT_SECONDS = 1


def event_pattern(source: str, request_id_prefix: str, other_request_ids: Sequence[str]) -> dict[str, Any]:
    """The run's result events: request ids under the run's prefix, or one of the lines' own ids.

    When the lines' own ids would make the pattern too long, every result event of the source matches, and
    the follower keeps only the run's own.
    """
    matchers: list[Any] = [{"prefix": f"{request_id_prefix}-"}, *sorted(set(other_request_ids))]
    pattern: dict[str, Any] = {
        "source": [source],
        "detail-type": list(RESULT_DETAIL_TYPES),
        "detail": {"request_id": matchers},
    }
    if len(json.dumps(pattern)) > MAX_PATTERN_CHARACTERS:
        del pattern["detail"]
    return pattern


class ResultSubscription:
    """Receives the events a pattern matches on one bus, through a temporary rule and queue."""

    def __init__(self, events: EventBridgeClient, sqs: SQSClient, event_bus_name: str, pattern: dict[str, Any]) -> None:
        self._events = events
        self._sqs = sqs
        self._bus = event_bus_name
        self._pattern = pattern
        self.name = f"{NAME_PREFIX}{secrets.token_hex(6)}"
        self.queue_url: str | None = None
        self.rule_arn: str | None = None
        self._target_added = False
        self.leftovers: list[str] = []

    def __enter__(self) -> ResultSubscription:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _create(self) -> None:
        self.queue_url = self._sqs.create_queue(QueueName=self.name, Attributes={"MessageRetentionPeriod": "86400"})[
            "QueueUrl"
        ]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.rule_arn = self._events.put_rule(
            Name=self.name,
            EventBusName=self._bus,
            EventPattern=json.dumps(self._pattern),
            State="ENABLED",
            Description="completion-tagger send --wait: the run's result events (removed when it ends)",
        )["RuleArn"]
        self._sqs.set_queue_attributes(
            QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, self.rule_arn))}
        )
        self._events.put_targets(Rule=self.name, EventBusName=self._bus, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
        self._target_added = True

    def receive(self) -> Iterator[dict[str, Any]]:
        """The events that arrived (waiting up to a second for the first), each deleted once read."""
        assert self.queue_url is not None
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_SECONDS
        ).get("Messages", [])
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event

    def close(self) -> list[str]:
        """Remove the target, the rule and the queue; each step is tried whatever the others did, and a second
        Ctrl-C does not cut it short. Returns what could not be removed (also kept in `leftovers`)."""
        with _ctrl_c_held():
            self._remove()
        return self.leftovers

    def _remove(self) -> None:
        if self._target_added:
            self._attempt(
                f"target of rule {self.name}",
                lambda: self._events.remove_targets(Rule=self.name, EventBusName=self._bus, Ids=[TARGET_ID]),
            )
            self._target_added = False
        if self.rule_arn is not None:
            self._attempt(f"rule {self.name}", lambda: self._events.delete_rule(Name=self.name, EventBusName=self._bus))
            self.rule_arn = None
        if self.queue_url is not None:
            url = self.queue_url
            self._attempt(f"queue {url}", lambda: self._sqs.delete_queue(QueueUrl=url))
            self.queue_url = None

    def _attempt(self, what: str, action: Any) -> None:
        try:
            action()
        except (ClientError, BotoCoreError) as error:
            self.leftovers.append(f"{what}: {error}")


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Defer SIGINT while cleaning up (main thread only); a Ctrl-C that came meanwhile is raised afterwards."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Only this rule may send to the queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RunResultEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
