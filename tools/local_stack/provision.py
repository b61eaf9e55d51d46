"""Create on moto what `template.yaml` declares, plus an observer queue for the result events.

Differences from the deployed stack, on purpose:
- The tag-request queue's visibility timeout is SHORT (2 s by default, `--visibility-timeout`), not
  the template's 6 x the function timeout, so records that are put back come round again within a
  run of a few seconds instead of minutes.
- An observer rule (`source` = the function's event source) copies every result event to an observer
  queue, so `run` can print and count them. The deployed stack leaves consumers to add their own rules.
- The example mapping rules (examples/upstream-mapping.yaml, deployed as a stack of their own) are
  created on the same bus, so upstream events of a foreign shape reach the queue as they would on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from local_stack.mapping_rules import MappingRule, load_mapping_rules

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 2
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
EVENT_SOURCE = "completion-tagger"


@dataclass(frozen=True)
class StackNames:
    """Physical names of the local resources; a prefix keeps tests that share one moto apart."""

    queue: str = "completion-tagger-requests"
    dead_letter_queue: str = "completion-tagger-requests-dlq"
    observer_queue: str = "completion-tagger-results-observer"
    table: str = "completion-tagger-idempotency"
    event_bus: str = "completion-tagger-results"
    upstream_rule: str = "completion-tagger-upstream-tag-requests"
    mapping_rule_prefix: str = "completion-tagger-map-"
    observer_rule: str = "completion-tagger-results-observer"

    @classmethod
    def with_prefix(cls, prefix: str) -> StackNames:
        base = cls()
        return cls(**{name: f"{prefix}{value}" for name, value in base.__dict__.items()})


@dataclass(frozen=True)
class StackSettings:
    """The knobs provisioning takes from the template (and the local visibility timeout)."""

    max_receive_count: int = 5
    visibility_timeout_seconds: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    upstream_event_pattern: dict[str, Any] | None = None
    event_source: str = EVENT_SOURCE
    with_table: bool = True
    # None: the rules of examples/upstream-mapping.yaml.
    mapping_rules: tuple[MappingRule, ...] | None = None


@dataclass(frozen=True)
class StackResources:
    """What `provision` created: URLs and ARNs that the runner, the poller and the handler need."""

    names: StackNames
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    observer_queue_url: str
    observer_queue_arn: str
    table_name: str
    event_bus_name: str
    event_bus_arn: str


def provision(names: StackNames, settings: StackSettings) -> StackResources:
    """Create the queues, table, bus and rules. Clients come from the environment (AWS_ENDPOINT_URL)."""
    sqs: SQSClient = boto3.client("sqs")
    events: EventBridgeClient = boto3.client("events")

    dlq_url, dlq_arn = _create_queue(
        sqs, names.dead_letter_queue, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
    queue_url, queue_arn = _create_queue(
        sqs,
        names.queue,
        {
            "VisibilityTimeout": str(settings.visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    observer_url, observer_arn = _create_queue(sqs, names.observer_queue, {})

    bus_arn = events.create_event_bus(Name=names.event_bus)["EventBusArn"]
    upstream_pattern = settings.upstream_event_pattern or {"detail-type": ["CompletionTagRequested"]}
    _route(events, names.event_bus, names.upstream_rule, upstream_pattern, queue_arn)
    mapping_rules = load_mapping_rules() if settings.mapping_rules is None else settings.mapping_rules
    mapping_rule_names = [_create_mapping_rule(events, names, rule, queue_arn) for rule in mapping_rules]
    _allow_events_to_send(sqs, queue_url, queue_arn, names.event_bus, [names.upstream_rule, *mapping_rule_names])
    _route(events, names.event_bus, names.observer_rule, {"source": [settings.event_source]}, observer_arn)
    _allow_events_to_send(sqs, observer_url, observer_arn, names.event_bus, [names.observer_rule])

    if settings.with_table:
        _create_idempotency_table(boto3.client("dynamodb"), names.table)

    return StackResources(
        names=names,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        observer_queue_url=observer_url,
        observer_queue_arn=observer_arn,
        table_name=names.table,
        event_bus_name=names.event_bus,
        event_bus_arn=bus_arn,
    )


def _create_queue(sqs: SQSClient, name: str, attributes: Mapping[QueueAttributeNameType, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _route(events: EventBridgeClient, bus: str, rule: str, pattern: dict[str, Any], queue_arn: str) -> None:
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])


def _create_mapping_rule(events: EventBridgeClient, names: StackNames, rule: MappingRule, queue_arn: str) -> str:
    """A mapping rule on the bus: its pattern, and its input transformer on the queue target."""
    name = f"{names.mapping_rule_prefix}{rule.logical_id}"
    events.put_rule(Name=name, EventBusName=names.event_bus, EventPattern=json.dumps(rule.event_pattern))
    events.put_targets(
        Rule=name,
        EventBusName=names.event_bus,
        Targets=[
            {
                "Id": "queue",
                "Arn": queue_arn,
                "InputTransformer": {"InputPathsMap": rule.input_paths, "InputTemplate": rule.input_template},
            }
        ],
    )
    return name


def _allow_events_to_send(sqs: SQSClient, queue_url: str, queue_arn: str, bus: str, rules: list[str]) -> None:
    """The queue policy the deployed stack needs for its rules' targets (moto does not enforce it)."""
    rules_arn = queue_arn.replace(":sqs:", ":events:").rsplit(":", 1)[0] + f":rule/{bus}/"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": [rules_arn + rule for rule in rules]}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})


def _create_idempotency_table(dynamodb: DynamoDBClient, name: str) -> None:
    """On-demand, partition key `id` (string), TTL on `expiration`: Powertools' idempotency layout."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
