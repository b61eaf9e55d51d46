"""template.yaml against the README ("Configuration", "Architecture") and the deployment's own rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure._template import (
    NO_VALUE,
    REPO_ROOT,
    TEMPLATE_PATH,
    Resolver,
    refs_to_parameters,
)

pytestmark = pytest.mark.infrastructure

CONTRACT_VARIABLES = {
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY_SECRET",
    "IDEMPOTENCY_TABLE_NAME",
    "EVENT_BUS_NAME",
    "EVENT_SOURCE",
    "MAX_RECEIVE_COUNT",
    "IDEMPOTENCY_EXPIRY_SECONDS",
    "MAX_CONCURRENCY",
    "COMPLETION_LEASES",
}
FIXED_VARIABLES = {
    "EVENT_SOURCE": "completion-tagger",
    "POWERTOOLS_SERVICE_NAME": "completion-tagger",
    "POWERTOOLS_METRICS_NAMESPACE": "CompletionTagger",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
# Declared only for `sam local invoke` (Environment=local); never in a deployed function.
LOCAL_ONLY_VARIABLES = {"OPENAI_API_KEY", "AWS_ENDPOINT_URL", "POWERTOOLS_TRACE_DISABLED"}
SUPPORTED_RUNTIMES = {"python3.12", "python3.13"}
SQS_MAX_VISIBILITY_TIMEOUT = 43200

# Every Allow statement of the function's role: Sid -> (actions, resource). X-Ray is the one
# statement on "*": PutTraceSegments / PutTelemetryRecords support no resource-level permissions.
EXPECTED_FUNCTION_STATEMENTS: dict[str, tuple[set[str], Any]] = {
    "WriteOwnLogs": ({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": ["TaggerLogGroup", "Arn"]}),
    "ConsumeTagRequestQueue": (
        {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
        },
        {"Fn::GetAtt": ["TagRequestQueue", "Arn"]},
    ),
    "RequeueCopies": ({"sqs:SendMessage"}, {"Fn::GetAtt": ["TagRequestQueue", "Arn"]}),
    "IdempotencyRecords": (
        {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        {"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
    ),
    "PublishResultEvents": (
        {"events:PutEvents", "events:DescribeEventBus"},
        {
            "Fn::If": [
                "CreateEventBus",
                {"Fn::GetAtt": ["ResultEventBus", "Arn"]},
                {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"},
            ]
        },
    ),
    "ReadApiKey": (
        {"secretsmanager:GetSecretValue"},
        {"Fn::If": ["CreateApiKeySecret", {"Ref": "OpenAIApiKeySecret"}, {"Ref": "OpenAIApiKeySecretArn"}]},
    ),
    "XRayTracing": ({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, "*"),
}
WILDCARD_RESOURCE_ALLOWED = {("TaggerFunctionRole", "XRayTracing")}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def deployable_environments(template: dict[str, Any]) -> list[str]:
    return [value for value in template["Parameters"]["Environment"]["AllowedValues"] if value != "local"]


def function_role_statements(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements the role always has (not the conditional KMS policy)."""
    policies = resources["TaggerFunctionRole"]["Properties"]["Policies"]
    return [
        statement
        for policy in policies
        if "Fn::If" not in policy
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def role_policies(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A role's inline policies, a conditional one (`Fn::If` with AWS::NoValue) as when its condition holds."""
    policies = []
    for entry in properties.get("Policies", []):
        policy = entry
        if "Fn::If" in entry:
            _, policy, otherwise = entry["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
        policies.append(policy)
    return policies


def policy_documents(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM policy document of the template, with the logical id it belongs to."""
    documents = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents += [(logical_id, policy["PolicyDocument"]) for policy in role_policies(properties)]
        if resource["Type"] in {"AWS::SQS::QueuePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents.append((logical_id, properties["PolicyDocument"]))
    return documents


def conditions_in(value: Any) -> set[str]:
    """Names of the conditions a value's `Fn::If`s test."""
    if isinstance(value, dict):
        found = {value["Fn::If"][0]} if "Fn::If" in value else set()
        return found.union(*(conditions_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(conditions_in(item) for item in value))
    return set()


# --- function ------------------------------------------------------------------------------------


def test_function_runs_on_a_supported_python_runtime(function: dict[str, Any]) -> None:
    assert function["Runtime"] in SUPPORTED_RUNTIMES
    assert function["Architectures"] == ["arm64"]
    assert function["CodeUri"] == "functions/"
    assert function["Handler"] == "tagger.app.lambda_handler"
    assert function["Tracing"] == {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}


def test_tracing_is_on_by_default_and_can_be_switched_off(template: dict[str, Any], variables: dict[str, Any]) -> None:
    assert template["Parameters"]["EnableTracing"]["Default"] == "true"
    on = Resolver(template, {"Environment": "prod"}).resolve(variables)
    off = Resolver(template, {"Environment": "prod", "EnableTracing": "false"}).resolve(variables)
    assert "POWERTOOLS_TRACE_DISABLED" not in on
    assert off["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_handler_named_by_the_template_exists() -> None:
    module, _, name = "tagger.app.lambda_handler".rpartition(".")
    source = REPO_ROOT / "functions" / (module.replace(".", "/") + ".py")
    assert source.is_file()
    assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE)


def test_dependencies_layer_is_built_by_sam_for_the_functions_runtime(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    layer = resources["DependenciesLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (REPO_ROOT / "layers" / "dependencies" / "Makefile").read_text(encoding="utf-8")
    assert "build-DependenciesLayer:" in makefile
    assert f"TARGET_PYTHON_VERSION ?= {function['Runtime'].removeprefix('python')}" in makefile
    assert layer["Properties"]["ContentUri"] == "layers/dependencies/"
    assert layer["Properties"]["CompatibleRuntimes"] == [function["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == function["Architectures"]
    assert function["Layers"] == [{"Ref": "DependenciesLayer"}]
    requirements = (REPO_ROOT / "layers" / "dependencies" / "requirements.txt").read_text(encoding="utf-8")
    pinned = [line.split("==")[0].lower() for line in requirements.splitlines() if "==" in line]
    assert pinned, "the layer pins its dependencies"
    assert not {"boto3", "botocore"} & set(pinned), "boto3 comes from the Lambda runtime"


def test_every_configuration_variable_is_set_on_the_function(
    template: dict[str, Any], variables: dict[str, Any]
) -> None:
    assert set(variables) >= CONTRACT_VARIABLES
    for environment in deployable_environments(template):
        resolved = Resolver(template, {"Environment": environment}).resolve(variables)
        assert set(resolved) >= CONTRACT_VARIABLES, environment
        for name, value in FIXED_VARIABLES.items():
            assert resolved[name] == value


def test_variables_are_wired_to_their_parameters_and_resources(variables: dict[str, Any]) -> None:
    assert variables["OPENAI_BASE_URL"] == {"Ref": "OpenAIBaseUrl"}
    assert variables["OPENAI_API_KEY_SECRET"] == {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "OpenAIApiKeySecret"}, {"Ref": "OpenAIApiKeySecretArn"}]
    }
    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert variables["EVENT_BUS_NAME"] == {
        "Fn::If": ["CreateEventBus", {"Ref": "ResultEventBus"}, {"Ref": "EventBusName"}]
    }
    assert variables["IDEMPOTENCY_EXPIRY_SECONDS"] == {"Ref": "IdempotencyExpirySeconds"}
    assert variables["MAX_CONCURRENCY"] == {"Ref": "MaxConcurrency"}
    assert variables["COMPLETION_LEASES"] == {"Ref": "CompletionLeases"}


def test_deployed_function_never_gets_an_api_key_or_local_endpoint(
    template: dict[str, Any], variables: dict[str, Any]
) -> None:
    for environment in deployable_environments(template):
        for overrides in (
            {},
            {"OpenAIApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:k-AbCdEf"},
        ):
            resolved = Resolver(template, {"Environment": environment} | overrides).resolve(variables)
            assert not {"OPENAI_API_KEY", "AWS_ENDPOINT_URL"} & set(resolved), (environment, overrides)
            assert resolved["OPENAI_API_KEY_SECRET"], "a deployed function always reads the key from a secret"


def test_local_invoke_declares_the_local_only_variables_empty(
    template: dict[str, Any], variables: dict[str, Any]
) -> None:
    resolved = Resolver(template, {"Environment": "local"}).resolve(variables)
    assert set(resolved) >= LOCAL_ONLY_VARIABLES
    assert resolved["OPENAI_API_KEY"] == ""
    assert resolved["AWS_ENDPOINT_URL"] == ""


def test_function_uses_the_explicit_role_and_log_group(function: dict[str, Any], resources: dict[str, Any]) -> None:
    assert function["Role"] == {"Fn::GetAtt": ["TaggerFunctionRole", "Arn"]}
    assert "Policies" not in function, "SAM would attach its own policies next to the explicit role"
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "TaggerLogGroup"}
    assert resources["TaggerLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}


# --- queues --------------------------------------------------------------------------------------


def test_visibility_timeout_is_at_least_six_function_timeouts(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    timeout = template["Parameters"]["FunctionTimeoutSeconds"]
    assert function["Timeout"] == {"Ref": "FunctionTimeoutSeconds"}
    visibility = template["Resources"]["TagRequestQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility == {
        "Fn::FindInMap": ["VisibilityTimeoutByFunctionTimeout", {"Ref": "FunctionTimeoutSeconds"}, "VisibilityTimeout"]
    }
    table = template["Mappings"]["VisibilityTimeoutByFunctionTimeout"]
    assert set(table) == {str(value) for value in timeout["AllowedValues"]}
    assert str(timeout["Default"]) in table
    for seconds in timeout["AllowedValues"]:
        assert 1 <= int(seconds) <= 900
        assert 6 * int(seconds) <= table[str(seconds)]["VisibilityTimeout"] <= SQS_MAX_VISIBILITY_TIMEOUT


def test_redrive_and_function_share_the_max_receive_count_parameter(
    resources: dict[str, Any], variables: dict[str, Any]
) -> None:
    redrive = resources["TagRequestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["TagRequestDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert variables["MAX_RECEIVE_COUNT"] == redrive["maxReceiveCount"]


def test_queues_are_encrypted_and_the_dead_letter_queue_keeps_messages_14_days(resources: dict[str, Any]) -> None:
    for name in ("TagRequestQueue", "TagRequestDeadLetterQueue"):
        properties = resources[name]["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, name
    assert resources["TagRequestDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


# --- event source mapping and SnapStart ----------------------------------------------------------


def test_event_source_mapping_reports_batch_item_failures(resources: dict[str, Any], function: dict[str, Any]) -> None:
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1
    assert "Events" not in function, "a SAM event would add a second mapping"
    properties = mappings[0]["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["TagRequestQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == {"Ref": "BatchSize"}
    assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}
    assert properties["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "EventSourceMaximumConcurrency"}}


def test_event_source_mapping_invokes_the_alias_only_with_snapstart(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    target = resources["TagRequestEventSourceMapping"]["Properties"]["FunctionName"]
    on = Resolver(template, {"EnableSnapStart": "true"}).resolve(target)
    off = Resolver(template, {"EnableSnapStart": "false"}).resolve(target)
    assert on == {"Ref": "TaggerFunction.Alias"}
    assert off == {"Fn::GetAtt": ["TaggerFunction", "Arn"]}


def test_snapstart_applies_to_published_versions_when_enabled(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    assert function["AutoPublishAlias"] == "live"
    assert function["AutoPublishAliasAllProperties"] is True
    assert function["VersionDeletionPolicy"] == "Delete"
    snap = function["SnapStart"]["ApplyOn"]
    assert Resolver(template, {"EnableSnapStart": "true"}).resolve(snap) == "PublishedVersions"
    assert Resolver(template, {"EnableSnapStart": "false"}).resolve(snap) == "None"


def test_a_parameter_change_publishes_a_new_version(template: dict[str, Any], function: dict[str, Any]) -> None:
    """SAM hashes unresolved parameter references, so the version description must name them."""
    parameters = set(template["Parameters"])
    configuration = {key: function[key] for key in ("Timeout", "MemorySize", "Environment", "SnapStart")}
    used = refs_to_parameters(configuration, parameters)
    for condition in conditions_in(configuration):
        used |= refs_to_parameters(template["Conditions"][condition], parameters)
    described = refs_to_parameters(function["VersionDescription"], parameters)
    # Not in the description (256-character limit; documented): resource identities, local-only.
    assert used - described == {"EventBusName", "OpenAIApiKeySecretArn", "Environment"}


def test_version_description_fits_lambdas_256_characters(template: dict[str, Any], function: dict[str, Any]) -> None:
    text = function["VersionDescription"]["Fn::Sub"]
    for name, spec in template["Parameters"].items():
        if "${" + name + "}" not in text:
            continue
        if "AllowedValues" in spec:
            longest = max(len(str(value)) for value in spec["AllowedValues"])
        elif "MaxValue" in spec:
            longest = len(str(spec["MaxValue"]))
        else:
            assert "MaxLength" in spec, f"{name} needs a MaxLength to bound the version description"
            longest = int(spec["MaxLength"])
        text = text.replace("${" + name + "}", "x" * longest)
    assert len(text) <= 256


# --- idempotency table ---------------------------------------------------------------------------


def test_idempotency_table_matches_powertools_defaults(resources: dict[str, Any]) -> None:
    properties = resources["IdempotencyTable"]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True


# --- IAM -----------------------------------------------------------------------------------------


def test_no_allow_statement_has_a_wildcard_action_or_resource(resources: dict[str, Any]) -> None:
    documents = policy_documents(resources)
    assert {logical_id for logical_id, _ in documents} >= {
        "TaggerFunctionRole",
        "TagRequestQueuePolicy",
        "TagRequestDeadLetterQueuePolicy",
    }
    for logical_id, document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue  # the Deny statements (insecure transport) may be broad: they only take away
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (logical_id, statement.get("Sid"))
            if (logical_id, statement.get("Sid")) not in WILDCARD_RESOURCE_ALLOWED:
                assert "*" not in as_list(statement["Resource"]), (logical_id, statement.get("Sid"))


def test_function_role_grants_exactly_the_expected_actions_on_the_expected_resources(resources: dict[str, Any]) -> None:
    role = resources["TaggerFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role, "managed Lambda policies grant on every resource"
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    statements = function_role_statements(resources)
    assert all(statement["Effect"] == "Allow" for statement in statements)
    actual = {statement["Sid"]: (set(as_list(statement["Action"])), statement["Resource"]) for statement in statements}
    assert actual == EXPECTED_FUNCTION_STATEMENTS
    assert len(statements) == len(actual), "statement ids are unique"


# --- EventBridge ---------------------------------------------------------------------------------


def test_upstream_rule_routes_tag_requests_from_the_bus_into_the_queue(
    resources: dict[str, Any], variables: dict[str, Any]
) -> None:
    rule = resources["UpstreamTagRequestRule"]["Properties"]
    assert rule["EventBusName"] == variables["EVENT_BUS_NAME"]
    assert rule["EventPattern"] == {
        "source": [{"wildcard": {"Ref": "UpstreamEventSource"}}],
        "detail-type": [{"Ref": "UpstreamDetailType"}],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["TagRequestQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["TagRequestDeadLetterQueue", "Arn"]}


def test_upstream_pattern_cannot_route_the_functions_own_result_events(template: dict[str, Any]) -> None:
    spec = template["Parameters"]["UpstreamDetailType"]
    pattern = re.compile(spec["AllowedPattern"])
    assert pattern.match(spec["Default"])
    assert spec["Default"] == "CompletionTagRequested"
    for own in ("CompletionTagged", "CompletionTagFailed"):
        assert not pattern.match(own)
    assert template["Parameters"]["UpstreamEventSource"]["Default"] == "*"  # any source


@pytest.mark.parametrize(
    ("policy", "queue"),
    [("TagRequestQueuePolicy", "TagRequestQueue"), ("TagRequestDeadLetterQueuePolicy", "TagRequestDeadLetterQueue")],
)
def test_only_the_upstream_rule_and_the_stacks_mapping_rules_may_send_to_the_queues(
    resources: dict[str, Any], policy: str, queue: str
) -> None:
    properties = resources[policy]["Properties"]
    assert properties["Queues"] == [{"Ref": queue}]
    allows = [s for s in properties["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    rules = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule"
    common = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
    }
    assert allows == [
        {
            "Sid": allows[0]["Sid"],
            **common,
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["UpstreamTagRequestRule", "Arn"]}}},
        },
        {
            "Sid": allows[1]["Sid"],
            **common,
            # Rules of this account named "<stack>-map-*", on the default bus or a named one.
            "Condition": {
                "ArnLike": {
                    "aws:SourceArn": [
                        {"Fn::Sub": f"{rules}/${{AWS::StackName}}-map-*"},
                        {"Fn::Sub": f"{rules}/*/${{AWS::StackName}}-map-*"},
                    ]
                }
            },
        },
    ]


@pytest.mark.parametrize(("bus", "created"), [("", True), ("default", False), ("orders-bus", False)])
def test_event_bus_parameter_selects_created_default_or_existing_bus(
    template: dict[str, Any], variables: dict[str, Any], bus: str, created: bool
) -> None:
    resolver = Resolver(template, {"EventBusName": bus})
    assert template["Resources"]["ResultEventBus"]["Condition"] == "CreateEventBus"
    assert resolver.condition("CreateEventBus") is created
    expected = {"Ref": "ResultEventBus"} if created else bus
    assert resolver.resolve(variables["EVENT_BUS_NAME"]) == expected


# --- secret --------------------------------------------------------------------------------------


def test_api_key_secret_is_created_only_without_an_existing_arn_and_holds_a_placeholder(
    template: dict[str, Any],
) -> None:
    secret = template["Resources"]["OpenAIApiKeySecret"]
    assert secret["Condition"] == "CreateApiKeySecret"
    assert Resolver(template).condition("CreateApiKeySecret") is True
    given = {"OpenAIApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:k-AbCdEf"}
    assert Resolver(template, given).condition("CreateApiKeySecret") is False
    properties = secret["Properties"]
    assert "GenerateSecretString" not in properties
    assert "PLACEHOLDER" in properties["SecretString"]
    assert template["Parameters"]["OpenAIApiKeySecretArn"]["Default"] == ""


def test_no_literal_secret_or_machine_path_in_the_deployment_files() -> None:
    looks_secret = re.compile(
        r"sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----"
        r"|aws_secret_access_key"
    )
    absolute_path = re.compile(r"(?<![\w.:/])/(?:home|root|Users|tmp|work|mnt|opt/homebrew)/")
    files = [TEMPLATE_PATH, REPO_ROOT / "samconfig.toml", *sorted((REPO_ROOT / "events").glob("*.json"))]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not looks_secret.search(text), f"{path.name}: {looks_secret.search(text)}"
        assert not absolute_path.search(text), f"{path.name}: {absolute_path.search(text)}"


def test_no_parameter_can_carry_the_api_key_itself(template: dict[str, Any]) -> None:
    for name, spec in template["Parameters"].items():
        if "key" in name.lower():
            assert name.endswith(("SecretArn", "KmsKeyArn")), (
                f"{name}: only a secret's or a KMS key's ARN, never the key"
            )
            assert spec["AllowedPattern"].startswith("^$|^arn:aws"), name
            assert spec["Default"] == ""


# --- alarms --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alarm", "namespace", "metric", "dimension"),
    [
        (
            "DeadLetterQueueAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["TagRequestDeadLetterQueue", "QueueName"]}},
        ),
        ("FunctionErrorsAlarm", "AWS/Lambda", "Errors", {"Name": "FunctionName", "Value": {"Ref": "TaggerFunction"}}),
    ],
)
def test_alarm_watches_the_right_resource(
    template: dict[str, Any], alarm: str, namespace: str, metric: str, dimension: dict[str, Any]
) -> None:
    properties = template["Resources"][alarm]["Properties"]
    assert template["Resources"][alarm]["Type"] == "AWS::CloudWatch::Alarm"
    assert (properties["Namespace"], properties["MetricName"]) == (namespace, metric)
    assert properties["Dimensions"] == [dimension]
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["Threshold"] == 0
    assert properties["TreatMissingData"] == "notBreaching"
    topic = "arn:aws:sns:us-east-1:111122223333:ops"
    assert Resolver(template, {"AlarmTopicArn": topic}).resolve(properties["AlarmActions"]) == [topic]
    assert Resolver(template).resolve({"a": properties["AlarmActions"]}) == {}


# --- parameters and outputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "default", "low", "high"),
    [
        ("BatchSize", 10, 1, 10000),
        ("MaximumBatchingWindowInSeconds", 1, 0, 300),
        ("EventSourceMaximumConcurrency", 5, 2, 1000),
        ("MaxConcurrency", 10, 1, 100),
        ("MaxReceiveCount", 5, 1, 1000),
        ("IdempotencyExpirySeconds", 86400, 60, None),
        ("MemorySize", 512, 128, 10240),
    ],
)
def test_numeric_parameter_defaults_and_bounds(
    template: dict[str, Any], name: str, default: int, low: int, high: int
) -> None:
    spec = template["Parameters"][name]
    assert spec["Type"] == "Number"
    assert int(spec["Default"]) == default
    assert int(spec["MinValue"]) == low
    if high is not None:
        assert int(spec["MaxValue"]) == high


def test_other_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["EnableSnapStart"]["Default"] == "false"
    assert parameters["CompletionLeases"]["Default"] == "true"
    assert parameters["CompletionLeases"]["AllowedValues"] == ["true", "false"]
    assert parameters["EnableSnapStart"]["AllowedValues"] == ["false", "true"]
    assert int(parameters["FunctionTimeoutSeconds"]["Default"]) == 30
    assert parameters["OpenAIBaseUrl"]["Default"] == "https://api.openai.com/v1"
    assert parameters["EventBusName"]["Default"] == ""
    assert parameters["Environment"]["Default"] != "local"
    for name, spec in parameters.items():
        assert spec.get("Description"), f"{name} has a description"
        if "Default" in spec and "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(spec["Default"])), name


def test_outputs_name_what_operators_need(template: dict[str, Any]) -> None:
    assert {
        "TagRequestQueueUrl",
        "TagRequestQueueArn",
        "TagRequestDeadLetterQueueUrl",
        "IdempotencyTableName",
        "EventBusName",
        "TaggerFunctionArn",
        "OpenAIApiKeySecretArn",
    } <= set(template["Outputs"])
    resolver = Resolver(template)
    assert resolver.resolve(template["Outputs"]["EventBusName"]["Value"]) == {"Ref": "ResultEventBus"}
    assert (
        template["Outputs"]["OpenAIApiKeySecretArn"]["Value"]
        == template["Resources"]["TaggerFunction"]["Properties"]["Environment"]["Variables"]["OPENAI_API_KEY_SECRET"]
    )


def test_every_parameter_is_used(template: dict[str, Any]) -> None:
    parameters = set(template["Parameters"])
    used = refs_to_parameters(
        {key: template[key] for key in ("Resources", "Conditions", "Outputs", "Mappings") if key in template},
        parameters,
    )
    assert used == parameters, f"unused: {sorted(parameters - used)}"


def test_resolver_drops_no_value(template: dict[str, Any]) -> None:
    """The helper itself: `AWS::NoValue` removes the key, as CloudFormation does."""
    resolved = Resolver(template).resolve({"a": {"Ref": "AWS::NoValue"}, "b": 1})
    assert resolved == {"b": 1}
    assert NO_VALUE not in resolved.values()
