"""The dashboard and the alarms on the function's own metrics name only metrics the function emits.

What the function emits is read from the function itself: `emit_metrics` runs with the Powertools
`Metrics` of `tagger.telemetry`, in a process given the environment the template gives the function, for
an invocation in which every kind of outcome happened; the EMF blob it would log says the namespace, the
dimensions, and each metric's name and unit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, get_args

import pytest

from tagger.errors import PUT_BACK_CAUSES
from tagger.models import ErrorCode
from tests.infrastructure._template import REPO_ROOT

pytestmark = pytest.mark.infrastructure

EMIT_EVERY_METRIC = """
import json
from typing import get_args

from tagger import telemetry
from tagger.errors import PUT_BACK_CAUSES
from tagger.models import ErrorCode
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.service import emit_metrics

outcomes = InvocationOutcomes(
    tagged=1, duplicates=1, api_calls=1, put_events_calls=1, lease_contention=1, superseded_keys=1
)
for code in get_args(ErrorCode):
    outcomes.failed[code] += 1
outcomes.put_back["rate_limited"] += 1
for cause in PUT_BACK_CAUSES:
    outcomes.put_back[cause] += 1
outcomes.api_latencies_ms.append(120.0)
outcomes.lease_wait_ms.append(40.0)
emit_metrics(telemetry.metrics, outcomes)
print(json.dumps(telemetry.metrics.serialize_metric_set()))
"""
PERCENTILES = {"p50", "p90", "p99"}


@dataclass(frozen=True)
class Emitted:
    namespace: str
    dimensions: dict[str, str]
    units: dict[str, str]  # metric name -> unit


@dataclass(frozen=True)
class Charted:
    widget: str
    namespace: str
    name: str
    dimensions: dict[str, str]
    stat: str


@pytest.fixture(scope="module")
def emitted(variables: dict[str, Any]) -> Emitted:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "AWS_"))}
    environment |= {name: variables[name] for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")}
    environment["PYTHONPATH"] = str(REPO_ROOT / "functions")
    result = subprocess.run(
        [sys.executable, "-c", EMIT_EVERY_METRIC],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    blob = json.loads(result.stdout)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    (dimension_names,) = directive["Dimensions"]
    return Emitted(
        namespace=directive["Namespace"],
        dimensions={name: blob[name] for name in dimension_names},
        units={metric["Name"]: metric["Unit"] for metric in directive["Metrics"]},
    )


@pytest.fixture(scope="module")
def dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    resource = resources["TaggerDashboard"]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    body = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    # ${...} placeholders sit inside JSON strings only, so the body parses as it is.
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def charted_metrics(dashboard: dict[str, Any]) -> list[Charted]:
    charted = []
    for widget in dashboard["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        for entry in properties["metrics"]:
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            fields = entry[:-1] if options else entry
            assert "." not in fields and "..." not in fields, "no shorthand: every metric spelled out"
            namespace, name, *pairs = fields
            assert len(pairs) % 2 == 0, entry
            charted.append(
                Charted(
                    widget=properties["title"],
                    namespace=namespace,
                    name=name,
                    dimensions=dict(zip(pairs[::2], pairs[1::2], strict=True)),
                    stat=options.get("stat") or properties.get("stat", "Average"),
                )
            )
    return charted


def function_metrics(charted: list[Charted], emitted: Emitted) -> list[Charted]:
    return [metric for metric in charted if metric.namespace == emitted.namespace]


def test_the_function_emits_in_its_namespace_with_the_service_dimension(
    emitted: Emitted, variables: dict[str, Any]
) -> None:
    assert emitted.namespace == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert emitted.dimensions == {"service": variables["POWERTOOLS_SERVICE_NAME"]}


def test_every_function_metric_on_the_dashboard_is_emitted_with_those_dimensions(
    dashboard: dict[str, Any], emitted: Emitted
) -> None:
    charted = charted_metrics(dashboard)
    ours = function_metrics(charted, emitted)
    assert ours, "the dashboard shows the function's own metrics"
    for metric in ours:
        assert metric.name in emitted.units, f"{metric.widget}: {metric.name} is not a metric the function emits"
        assert metric.dimensions == emitted.dimensions, f"{metric.widget}: {metric.name} {metric.dimensions}"
    others = {metric.namespace for metric in charted} - {emitted.namespace}
    assert others == {"AWS/SQS", "AWS/Lambda", "AWS/DynamoDB"}


def test_statistics_suit_the_unit(dashboard: dict[str, Any], emitted: Emitted) -> None:
    """Counts are summed; percentiles only of timings."""
    for metric in function_metrics(charted_metrics(dashboard), emitted):
        unit = emitted.units[metric.name]
        if unit == "Count":
            assert metric.stat == "Sum", (metric.widget, metric.name)
        else:
            assert unit == "Milliseconds" and metric.stat in PERCENTILES, (metric.widget, metric.name)


def test_the_dashboard_shows_what_an_operator_needs(dashboard: dict[str, Any], emitted: Emitted) -> None:
    shown = {(metric.namespace, metric.name, metric.stat) for metric in charted_metrics(dashboard)}
    names = {(namespace, name) for namespace, name, _ in shown}
    ours = emitted.namespace
    outcomes = {"Tagged", "Failed", "Duplicates", "PutBack", "LeaseWaits", "LeaseContention"}
    outcomes |= {f"Error_{code}" for code in get_args(ErrorCode)}
    outcomes |= {f"Error_{cause}" for cause in PUT_BACK_CAUSES}
    assert {(ours, name) for name in outcomes} <= names
    # Every count the function emits is charted: a steady rate of any of them means something to an operator.
    assert {(ours, name) for name, unit in emitted.units.items() if unit == "Count"} <= names
    assert {(ours, "ApiLatency", stat) for stat in PERCENTILES} <= shown
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Invocations"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
    } <= names


def test_aws_metrics_are_those_of_the_stacks_own_resources(dashboard: dict[str, Any]) -> None:
    expected = {
        "QueueName": {"${TagRequestQueue.QueueName}", "${TagRequestDeadLetterQueue.QueueName}"},
        "FunctionName": {"${TaggerFunction}"},
        "TableName": {"${IdempotencyTable}"},
    }
    seen: dict[str, set[str]] = {}
    for metric in charted_metrics(dashboard):
        if metric.namespace.startswith("AWS/"):
            ((name, value),) = metric.dimensions.items()
            seen.setdefault(name, set()).add(value)
    assert seen == expected


def test_metric_widgets_name_their_region_and_fit_the_grid(dashboard: dict[str, Any]) -> None:
    for widget in dashboard["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "${AWS::Region}"


def test_the_alarm_widget_shows_every_alarm_of_the_stack(dashboard: dict[str, Any], resources: dict[str, Any]) -> None:
    alarms = {name for name, resource in resources.items() if resource["Type"] == "AWS::CloudWatch::Alarm"}
    (widget,) = [widget for widget in dashboard["widgets"] if widget["type"] == "alarm"]
    assert set(widget["properties"]["alarms"]) == {f"${{{name}.Arn}}" for name in alarms}


# --- alarms on the function's own metrics --------------------------------------------------------


def test_alarms_on_function_metrics_name_emitted_metrics(resources: dict[str, Any], emitted: Emitted) -> None:
    ours = [
        properties
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and (properties := resource["Properties"])["Namespace"] == emitted.namespace
    ]
    assert {properties["MetricName"] for properties in ours} == {
        "Error_unauthorized",
        "Error_rate_limited",
        "Error_quota_exceeded",
        "MetadataMismatch",
        *(f"Error_{cause}" for cause in PUT_BACK_CAUSES),
    }
    for properties in ours:
        assert properties["MetricName"] in emitted.units
        assert {item["Name"]: item["Value"] for item in properties["Dimensions"]} == emitted.dimensions
        assert properties["Statistic"] == "Sum"


@pytest.mark.parametrize("alarm", ["ApiKeyRejectedAlarm", "SecretUnreadableAlarm", "EventBusMissingAlarm"])
def test_alarms_on_a_deployment_fault_fire_on_the_first_record_within_five_minutes(
    resources: dict[str, Any], alarm: str
) -> None:
    properties = resources[alarm]["Properties"]
    assert properties["Period"] * properties["EvaluationPeriods"] == 300
    assert properties.get("DatapointsToAlarm", 1) == 1
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0)
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("alarm", "metric"), [("QuotaExceededAlarm", "Error_quota_exceeded"), ("MetadataMismatchAlarm", "MetadataMismatch")]
)
def test_alarms_on_what_does_not_pass_by_itself_fire_on_the_first_occurrence(
    resources: dict[str, Any], alarm: str, metric: str
) -> None:
    properties = resources[alarm]["Properties"]
    assert (properties["MetricName"], properties["EvaluationPeriods"]) == (metric, 1)
    assert properties.get("DatapointsToAlarm", 1) == 1
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0)
    assert properties["TreatMissingData"] == "notBreaching"


def test_rate_limit_alarm_needs_rate_limiting_sustained_over_minutes(resources: dict[str, Any]) -> None:
    properties = resources["RateLimitedAlarm"]["Properties"]
    assert properties["Period"] == 60
    assert properties["DatapointsToAlarm"] >= 5
    assert properties["EvaluationPeriods"] >= properties["DatapointsToAlarm"]
