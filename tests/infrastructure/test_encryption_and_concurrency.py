"""The optional customer-managed key and reserved concurrency, resolved for both settings of each parameter."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure._template import Resolver

pytestmark = pytest.mark.infrastructure

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Resource -> the property path that names the key.
KEY_PROPERTIES = {
    "TagRequestQueue": ("KmsMasterKeyId",),
    "TagRequestDeadLetterQueue": ("KmsMasterKeyId",),
    "IdempotencyTable": ("SSESpecification", "KMSMasterKeyId"),
    "OpenAIApiKeySecret": ("KmsKeyId",),
    "TaggerLogGroup": ("KmsKeyId",),
    "TaggerFunction": ("KmsKeyArn",),
}


def resolved(template: dict[str, Any], resource: str, overrides: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = Resolver(template, overrides).resolve(template["Resources"][resource]["Properties"])
    return properties


def dig(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        properties = properties.get(name, {})
    return properties or None


@pytest.mark.parametrize("resource", sorted(KEY_PROPERTIES))
def test_the_given_key_encrypts_every_store(template: dict[str, Any], resource: str) -> None:
    assert dig(resolved(template, resource, {"KmsKeyArn": KEY}), KEY_PROPERTIES[resource]) == KEY
    assert dig(resolved(template, resource, {}), KEY_PROPERTIES[resource]) is None


def test_without_a_key_the_stores_keep_aws_managed_encryption(template: dict[str, Any]) -> None:
    for queue in ("TagRequestQueue", "TagRequestDeadLetterQueue"):
        assert resolved(template, queue, {})["SqsManagedSseEnabled"] is True
        assert "SqsManagedSseEnabled" not in resolved(template, queue, {"KmsKeyArn": KEY})
    assert resolved(template, "IdempotencyTable", {})["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}


def test_the_role_may_use_the_key_only_when_given_and_only_through_the_stacks_services(
    template: dict[str, Any],
) -> None:
    (conditional,) = [
        policy for policy in template["Resources"]["TaggerFunctionRole"]["Properties"]["Policies"] if "Fn::If" in policy
    ]
    condition, policy, otherwise = conditional["Fn::If"]
    assert (condition, otherwise) == ("HasKmsKey", {"Ref": "AWS::NoValue"})
    assert Resolver(template, {"KmsKeyArn": KEY}).condition("HasKmsKey")
    assert not Resolver(template).condition("HasKmsKey")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
    services = statement["Condition"]["StringEquals"]["kms:ViaService"]
    assert [service["Fn::Sub"].split(".")[0] for service in services] == ["sqs", "dynamodb", "secretsmanager", "lambda"]


def test_key_parameter_takes_only_a_key_arn(template: dict[str, Any]) -> None:
    pattern = template["Parameters"]["KmsKeyArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, KEY)
    assert not re.fullmatch(pattern, "alias/aws/sqs")
    assert not re.fullmatch(pattern, "arn:aws:kms:us-east-1:111122223333:alias/mine")


def test_reserved_concurrency_is_off_by_default_and_set_when_given(template: dict[str, Any]) -> None:
    assert "ReservedConcurrentExecutions" not in resolved(template, "TaggerFunction", {})
    assert resolved(template, "TaggerFunction", {"ReservedConcurrency": 5})["ReservedConcurrentExecutions"] == 5
