"""examples/upstream-mapping.yaml: a valid template whose rule the tagger's queue policy admits and
whose input transformer always builds a request the function's model accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cfnlint.api import lint_file  # type: ignore[import-untyped]

from local_stack.mapping_rules import EXAMPLE_MAPPING_PATH, load_mapping_rules
from local_stack.template_defaults import read_template
from tagger.models import TagRequest

pytestmark = pytest.mark.infrastructure

PLACEHOLDER = re.compile(r"<([A-Za-z0-9]+)>")


def test_the_example_passes_cfn_lint() -> None:
    assert [str(match) for match in lint_file(Path(EXAMPLE_MAPPING_PATH))] == []


def test_the_rule_is_named_so_the_tagger_queues_accept_it() -> None:
    template, _ = read_template(EXAMPLE_MAPPING_PATH)
    [rule] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]

    # template.yaml's queue policies allow rules named "<stack name>-map-*".
    assert rule["Properties"]["Name"]["Fn::Sub"].startswith("${TaggerStackName}-map-")


def test_the_rule_name_fits_eventbridges_64_characters_for_every_stack_name_the_parameter_takes() -> None:
    template, _ = read_template(EXAMPLE_MAPPING_PATH)
    [rule] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    longest_stack_name = "s" * template["Parameters"]["TaggerStackName"]["MaxLength"]
    name = rule["Properties"]["Name"]["Fn::Sub"].replace("${TaggerStackName}", longest_stack_name)
    assert len(name) <= 64


def test_every_placeholder_is_mapped_and_every_event_field_it_reads_must_exist() -> None:
    [rule] = load_mapping_rules()

    assert set(PLACEHOLDER.findall(rule.input_template)) == set(rule.input_paths)
    required = {f"$.detail.{field}" for field in rule.event_pattern["detail"]}
    assert {path for path in rule.input_paths.values() if path.startswith("$.detail.")} == required
    assert all(rule.event_pattern["detail"][field] == [{"exists": True}] for field in rule.event_pattern["detail"])


def test_the_transformed_event_is_a_valid_tag_request() -> None:
    [rule] = load_mapping_rules()
    values = {
        "completion": "chatcmpl-abc123",
        "verdict": "approved",
        "reviewer": "ana",
        "approvedat": "2026-12-04T15:12:38.913456Z",
        "eventid": "3f2b-id",
    }

    body = PLACEHOLDER.sub(lambda found: values[found[1]], rule.input_template)

    request = TagRequest.model_validate(json.loads(body))
    assert request.completion_id == "chatcmpl-abc123"
    assert request.metadata == {"verdict": "approved", "reviewed-by": "ana"}
    assert request.request_id == "3f2b-id"
    assert request.issued_at == "2026-12-04T15:12:38.913456Z"


def test_the_upstream_events_own_time_orders_the_request() -> None:
    [rule] = load_mapping_rules()

    # The mapped request carries issued_at from the upstream event, which the pattern requires it to have.
    assert '"issued_at": "<approvedat>"' in rule.input_template
    assert rule.input_paths["approvedat"] == "$.detail.approved_at"
