"""`completion-tagger check-alarm-topic`: can CloudWatch deliver the stack's alarm notifications?

CloudWatch publishes to `AlarmTopicArn` as the service principal `cloudwatch.amazonaws.com`. If the topic is
encrypted with a key CloudWatch may not use, every publish fails and the only trace is the alarm's history:
no notification ever arrives. The AWS-managed key `alias/aws/sns` is always such a key (its policy cannot be
changed); a customer-managed key works only if its policy allows CloudWatch (docs/deploying.md, "Alarm
notifications").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError

CLOUDWATCH = "cloudwatch.amazonaws.com"
AWS_MANAGED_SNS_KEY = "alias/aws/sns"
# What SNS asks KMS for on the publisher's behalf.
NEEDED_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_SETUP = 2


def alarm_topic_problems(sns: Any, kms: Any, topic_arn: str) -> list[str]:
    """Why CloudWatch could not publish to the topic; empty when nothing stands in its way.

    Raises ClientError / BotoCoreError when the topic or its key cannot be read.
    """
    attributes: Mapping[str, str] = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    key_id = attributes.get("KmsMasterKeyId")
    if not key_id:
        return []  # not encrypted: nothing for CloudWatch to be refused
    if key_id == AWS_MANAGED_SNS_KEY or key_id.endswith(f":{AWS_MANAGED_SNS_KEY}"):
        return [_aws_managed(key_id)]
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if metadata.get("KeyManager") == "AWS":
        return [_aws_managed(key_id)]
    policy = json.loads(kms.get_key_policy(KeyId=metadata["KeyId"], PolicyName="default")["Policy"])
    missing = [action for action in NEEDED_ACTIONS if not _allows(policy, CLOUDWATCH, action)]
    if missing:
        return [
            f"the topic's KMS key {metadata['Arn']} does not allow {CLOUDWATCH} {', '.join(missing)} in its key "
            "policy: CloudWatch cannot publish alarm notifications to the topic"
        ]
    return []


def _aws_managed(key_id: str) -> str:
    return (
        f"the topic is encrypted with the AWS-managed key {key_id}, which CloudWatch may not use: every alarm "
        "notification is dropped. Encrypt it with a customer-managed key whose policy allows "
        f"{CLOUDWATCH} kms:Decrypt and kms:GenerateDataKey*"
    )


def _allows(policy: Mapping[str, Any], service: str, action: str) -> bool:
    """Whether an Allow statement names the service principal (or everyone) for the action (wildcards too)."""
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        if not _principal_includes(statement.get("Principal"), service):
            continue
        if any(_action_matches(pattern, action) for pattern in _as_list(statement.get("Action"))):
            return True
    return False


def _principal_includes(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return service in _as_list(principal.get("Service")) or "*" in _as_list(principal.get("AWS"))
    return False


def _action_matches(pattern: str, action: str) -> bool:
    pattern, action = pattern.lower(), action.lower()
    if pattern in {"*", "kms:*"}:
        return True
    return action.startswith(pattern[:-1]) if pattern.endswith("*") else pattern == action


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, Iterable) and not isinstance(value, str | Mapping) else [value]


@click.command("check-alarm-topic")
@click.option("--topic-arn", required=True, metavar="ARN", help="the stack's AlarmTopicArn")
@click.option("--region", default=None, help="AWS region (default: the topic's)")
def check_alarm_topic(topic_arn: str, region: str | None) -> None:
    """Check that CloudWatch can publish the stack's alarms to an SNS topic (its encryption key).

    Exit 0: nothing stands in the way; 1: notifications would be dropped (the reasons are printed);
    2: the topic or its key could not be read.
    """
    region = region or (topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None)
    session = boto3.session.Session(region_name=region)
    try:
        problems = alarm_topic_problems(session.client("sns"), session.client("kms"), topic_arn)
    except (ClientError, BotoCoreError) as error:
        click.echo(f"could not check {topic_arn}: {error}", err=True)
        raise SystemExit(EXIT_SETUP) from None
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(EXIT_PROBLEMS)
    click.echo(f"{topic_arn}: CloudWatch can publish alarm notifications to it")
