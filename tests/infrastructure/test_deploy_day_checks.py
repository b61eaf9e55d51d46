"""Mistakes a deployment can make that AWS would not report, or would report only halfway through.

All static: moto enforces no IAM, KMS or resource policy, evaluates no template `Rules`, and publishes no
`AWS/Events` metrics, so these checks read the template as CloudFormation, IAM and CloudWatch would.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure._template import Resolver

pytestmark = pytest.mark.infrastructure

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:completion-tagger/openai-api-key-AbC123"


# --- the API key secret's ARN ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    [
        "",
        SECRET_ARN,
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:openai-xYz9Qa",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:team/key-Q1w2E3",
    ],
)
def test_the_secret_parameter_takes_a_full_arn(template: dict[str, Any], arn: str) -> None:
    assert re.fullmatch(template["Parameters"]["OpenAIApiKeySecretArn"]["AllowedPattern"], arn)


@pytest.mark.parametrize(
    "arn",
    [
        # Partial ARNs: the name without Secrets Manager's 6-character suffix. IAM matches GetSecretValue
        # against the full ARN, so a policy naming one of these denies the read.
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:completion-tagger/openai-api-key",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:openai",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:openai-key-AbC1",
        "completion-tagger/openai-api-key-AbC123",
        "sk-proj-0123456789abcdef",
    ],
)
def test_the_secret_parameter_refuses_partial_arns_and_names(template: dict[str, Any], arn: str) -> None:
    assert not re.fullmatch(template["Parameters"]["OpenAIApiKeySecretArn"]["AllowedPattern"], arn)


def test_the_role_may_read_exactly_the_secret_the_function_is_given(
    resources: dict[str, Any], variables: dict[str, Any]
) -> None:
    policies = resources["TaggerFunctionRole"]["Properties"]["Policies"]
    statements = [
        statement
        for policy in policies
        if "PolicyDocument" in policy
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    (read,) = [statement for statement in statements if statement["Action"] == "secretsmanager:GetSecretValue"]
    # The same value (the full ARN, checked by the parameter's pattern, or the created secret's Ref, which
    # is its full ARN) in the policy and in the function's environment.
    assert read["Resource"] == variables["OPENAI_API_KEY_SECRET"]
    assert read["Resource"] == {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "OpenAIApiKeySecret"}, {"Ref": "OpenAIApiKeySecretArn"}]
    }


# --- the role's KMS permission is there before the first poll ---------------------------------------


def test_no_separate_policy_resource_grants_the_function_role_anything(resources: dict[str, Any]) -> None:
    """The event source mapping waits for the role (through the function), not for a separate policy.

    A separate AWS::IAM::Policy / RolePolicy attached to the role is created in parallel with the mapping,
    so the mapping's first polls of a KMS-encrypted queue could be denied.
    """
    attached = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"}
        and "TaggerFunctionRole" in str(resource["Properties"])
    ]
    mapping = resources["TagRequestEventSourceMapping"]
    assert not attached or set(attached) <= set(mapping.get("DependsOn", []))


def test_with_a_key_the_role_itself_carries_the_kms_permission(template: dict[str, Any]) -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    role = Resolver(template, {"KmsKeyArn": key}).resolve(template["Resources"]["TaggerFunctionRole"]["Properties"])
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Resource"] == key
        for action in statement["Action"]
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions
    without = Resolver(template).resolve(template["Resources"]["TaggerFunctionRole"]["Properties"])
    assert "kms" not in str([policy["PolicyDocument"] for policy in without["Policies"]])


# --- template Rules -------------------------------------------------------------------------------


def rule_holds(expression: Any, parameters: dict[str, Any]) -> bool:
    """A Rules assertion for the given parameter values (CloudFormation compares them as strings)."""
    (function, argument), *_ = expression.items()
    if function == "Fn::Or":
        return any(rule_holds(item, parameters) for item in argument)
    if function == "Fn::And":
        return all(rule_holds(item, parameters) for item in argument)
    if function == "Fn::Not":
        return not rule_holds(argument[0], parameters)
    if function == "Fn::Equals":
        left, right = (value_of(item, parameters) for item in argument)
        return left == right
    if function == "Fn::Contains":
        values, value = argument
        return value_of(value, parameters) in [value_of(item, parameters) for item in values]
    raise AssertionError(f"unsupported rule function {function}")


def value_of(value: Any, parameters: dict[str, Any]) -> str:
    if isinstance(value, dict):
        return str(parameters[value["Ref"]])
    return str(value)


def assertions_hold(template: dict[str, Any], overrides: dict[str, Any]) -> bool:
    parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()} | overrides
    return all(
        rule_holds(assertion["Assert"], parameters)
        for rule in template.get("Rules", {}).values()
        if "RuleCondition" not in rule or rule_holds(rule["RuleCondition"], parameters)
        for assertion in rule["Assertions"]
    )


@pytest.mark.parametrize(
    ("batch_size", "window", "accepted"),
    [(10, 0, True), (1, 0, True), (11, 0, False), (10000, 0, False), (11, 1, True), (10000, 300, True)],
)
def test_a_batch_above_ten_without_a_batching_window_is_refused_before_anything_is_created(
    template: dict[str, Any], batch_size: int, window: int, accepted: bool
) -> None:
    overrides = {"BatchSize": batch_size, "MaximumBatchingWindowInSeconds": window}
    assert assertions_hold(template, overrides) is accepted


def test_the_defaults_pass_the_rules(template: dict[str, Any]) -> None:
    assert assertions_hold(template, {})


def test_visibility_timeout_covers_six_function_timeouts_plus_any_batching_window(template: dict[str, Any]) -> None:
    longest_window = template["Parameters"]["MaximumBatchingWindowInSeconds"]["MaxValue"]
    table = template["Mappings"]["VisibilityTimeoutByFunctionTimeout"]
    for timeout in template["Parameters"]["FunctionTimeoutSeconds"]["AllowedValues"]:
        assert table[str(timeout)]["VisibilityTimeout"] >= 6 * int(timeout) + longest_window, timeout


# --- alarms on the rules that deliver into the queue ----------------------------------------------

RULE_METRICS = {"FailedInvocations", "InvocationsFailedToBeSentToDlq"}


def rules_targeting_the_queue(resources: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        and any(
            target["Arn"] == {"Fn::GetAtt": ["TagRequestQueue", "Arn"]} for target in resource["Properties"]["Targets"]
        )
    ]


def evaluate(value: Any, refs: dict[str, str]) -> Any:
    """Fn::Select / Fn::Split / Fn::Sub over `${Resource}` references, with the given Ref values."""
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Fn::Select":
            index, items = argument
            return evaluate(items, refs)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(evaluate(text, refs)).split(separator)
        if function == "Fn::Sub":
            return re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda match: refs[match.group(1)], argument)
        if function == "Ref":
            return refs[argument]
    if isinstance(value, dict):
        return {key: evaluate(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate(item, refs) for item in value]
    return value


def test_every_rule_into_the_queue_has_alarms_on_its_failed_deliveries(resources: dict[str, Any]) -> None:
    rules = rules_targeting_the_queue(resources)
    assert "UpstreamTagRequestRule" in rules
    for rule in rules:
        watched = {
            resource["Properties"]["MetricName"]
            for resource in resources.values()
            if resource["Type"] == "AWS::CloudWatch::Alarm"
            and resource["Properties"]["Namespace"] == "AWS/Events"
            and rule in str(resource["Properties"]["Dimensions"])
        }
        assert watched == RULE_METRICS, rule


@pytest.mark.parametrize(
    ("bus_parameter", "rule_ref", "expected"),
    [
        # A rule's Ref is "<name>" on the default bus and "<bus>|<name>" on any other; AWS/Events names a
        # default-bus rule by RuleName alone, and a custom-bus rule by EventBusName and RuleName.
        ("default", "stack-UpstreamTagRequestRule-ABC", {"RuleName": "stack-UpstreamTagRequestRule-ABC"}),
        (
            "",
            "stack|stack-UpstreamTagRequestRule-ABC",
            {"EventBusName": "stack", "RuleName": "stack-UpstreamTagRequestRule-ABC"},
        ),
        (
            "team-bus",
            "team-bus|stack-UpstreamTagRequestRule-ABC",
            {"EventBusName": "team-bus", "RuleName": "stack-UpstreamTagRequestRule-ABC"},
        ),
    ],
)
def test_rule_alarms_carry_the_dimensions_aws_events_publishes_for_that_bus(
    template: dict[str, Any], bus_parameter: str, rule_ref: str, expected: dict[str, str]
) -> None:
    resolver = Resolver(template, {"EventBusName": bus_parameter})
    refs = {"UpstreamTagRequestRule": rule_ref, "ResultEventBus": "stack"}
    alarms = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"]["Namespace"] == "AWS/Events"
    ]
    assert {properties["MetricName"] for properties in alarms} == RULE_METRICS
    for properties in alarms:
        dimensions = evaluate(resolver.resolve(properties["Dimensions"]), refs)
        assert {item["Name"]: item["Value"] for item in dimensions} == expected
        assert (properties["Statistic"], properties["Threshold"], properties["TreatMissingData"]) == (
            "Sum",
            0,
            "notBreaching",
        )
