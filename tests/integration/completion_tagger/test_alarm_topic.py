"""`completion-tagger check-alarm-topic` against moto's SNS and KMS over HTTP.

moto stores a topic's KmsMasterKeyId and a key's policy as AWS does, but enforces neither: a publish to a
topic whose key CloudWatch may not use succeeds on moto and is dropped on AWS. So the command reads the
topic's key and its policy, which is what these tests exercise; CloudWatch's publishing itself is not.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from completion_tagger.alarm_topic import alarm_topic_problems
from completion_tagger.cli import cli
from local_stack.aws_endpoint import MotoEndpoint

pytestmark = pytest.mark.integration

ACCOUNT_ROOT = {
    "Sid": "Root",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def cloudwatch_statement(actions: list[str]) -> dict[str, Any]:
    return {
        "Sid": "AlarmNotifications",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": actions,
        "Resource": "*",
    }


@pytest.fixture
def clients(moto: MotoEndpoint) -> tuple[Any, Any]:
    return boto3.client("sns"), boto3.client("kms")


def topic(sns: Any, key_id: str | None) -> str:
    attributes = {"KmsMasterKeyId": key_id} if key_id else {}
    arn: str = sns.create_topic(Name=f"alarms-{uuid.uuid4().hex[:8]}", Attributes=attributes)["TopicArn"]
    return arn


def key(kms: Any, *statements: dict[str, Any]) -> str:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [ACCOUNT_ROOT, *statements]})
    arn: str = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    return arn


def test_an_unencrypted_topic_is_fine(clients: tuple[Any, Any]) -> None:
    sns, kms = clients
    assert alarm_topic_problems(sns, kms, topic(sns, None)) == []


def test_the_aws_managed_sns_key_drops_every_notification(clients: tuple[Any, Any]) -> None:
    sns, kms = clients
    [problem] = alarm_topic_problems(sns, kms, topic(sns, "alias/aws/sns"))
    assert "AWS-managed key alias/aws/sns" in problem and "dropped" in problem


@pytest.mark.parametrize(
    "actions", [["kms:Decrypt", "kms:GenerateDataKey*"], ["kms:*"], ["kms:Decrypt", "kms:GenerateDataKey"]]
)
def test_a_customer_managed_key_that_allows_cloudwatch_is_fine(clients: tuple[Any, Any], actions: list[str]) -> None:
    sns, kms = clients
    assert alarm_topic_problems(sns, kms, topic(sns, key(kms, cloudwatch_statement(actions)))) == []


def test_a_customer_managed_key_without_cloudwatch_in_its_policy_is_reported(clients: tuple[Any, Any]) -> None:
    sns, kms = clients
    partial = key(kms, cloudwatch_statement(["kms:Decrypt"]))
    [problem] = alarm_topic_problems(sns, kms, topic(sns, partial))
    assert partial in problem and "kms:GenerateDataKey" in problem and "kms:Decrypt" not in problem.split("allow")[1]
    [problem] = alarm_topic_problems(sns, kms, topic(sns, key(kms)))
    assert "kms:Decrypt, kms:GenerateDataKey" in problem


def test_the_command_exits_by_what_it_found(clients: tuple[Any, Any]) -> None:
    sns, _ = clients
    runner = CliRunner()
    good = runner.invoke(cli, ["check-alarm-topic", "--topic-arn", topic(sns, None)])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(cli, ["check-alarm-topic", "--topic-arn", topic(sns, "alias/aws/sns")])
    assert bad.exit_code == 1 and "alias/aws/sns" in bad.output
    missing = runner.invoke(
        cli, ["check-alarm-topic", "--topic-arn", "arn:aws:sns:us-east-1:123456789012:no-such-topic"]
    )
    assert missing.exit_code == 2 and "could not check" in missing.output
