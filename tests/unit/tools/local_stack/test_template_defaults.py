"""The event source mapping's settings read from template.yaml (local_stack.template_defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stack.template_defaults import FALLBACKS, TEMPLATE_PATH, load_template_defaults

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  BatchSize: {Type: Number, Default: 7}
  MaximumBatchingWindowInSeconds: {Type: Number, Default: 2}
  MaxReceiveCount: {Type: Number, Default: 3}
  MaxConcurrency: {Type: Number, Default: 4}
  FunctionTimeoutSeconds: {Type: Number, Default: 45}
  UpstreamDetailType: {Type: String, Default: TagPlease}
  UpstreamEventSource: {Type: String, Default: ""}
Conditions:
  HasUpstreamEventSource: !Not [!Equals [!Ref UpstreamEventSource, ""]]
Resources:
  UpstreamTagRequestRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        detail-type: [!Ref UpstreamDetailType]
        source: !If
          - HasUpstreamEventSource
          - [!Ref UpstreamEventSource]
          - [{anything-but: [completion-tagger]}]
"""


def test_values_come_from_the_parameter_defaults(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    defaults = load_template_defaults(path)
    assert (defaults.batch_size, defaults.batching_window_seconds, defaults.max_receive_count) == (7, 2, 3)
    assert (defaults.max_concurrency, defaults.function_timeout_seconds) == (4, 45)
    assert defaults.upstream_detail_type == "TagPlease"
    assert defaults.upstream_event_pattern == {
        "detail-type": ["TagPlease"],
        "source": [{"anything-but": ["completion-tagger"]}],
    }
    assert defaults.fallbacks == {}


def test_a_missing_parameter_falls_back_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("  BatchSize: {Type: Number, Default: 7}\n", ""))
    defaults = load_template_defaults(path)
    assert defaults.batch_size == FALLBACKS["BatchSize"]
    assert set(defaults.fallbacks) == {"BatchSize"}
    assert defaults.max_receive_count == 3


def test_a_missing_template_falls_back_entirely(tmp_path: Path) -> None:
    defaults = load_template_defaults(tmp_path / "nope.yaml")
    assert defaults.max_receive_count == FALLBACKS["MaxReceiveCount"]
    assert defaults.upstream_event_pattern == {"detail-type": ["CompletionTagRequested"]}
    assert "EventPattern" in defaults.fallbacks


def test_an_unresolvable_pattern_falls_back_to_the_detail_type(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("[!Ref UpstreamEventSource]", "[!GetAtt Something.Arn]").replace('""}', "x}"))
    defaults = load_template_defaults(path)
    assert defaults.upstream_event_pattern == {"detail-type": ["TagPlease"]}
    assert "GetAtt" in defaults.fallbacks["EventPattern"]


@pytest.mark.skipif(not TEMPLATE_PATH.is_file(), reason="template.yaml not written yet")
def test_the_projects_template_is_read_without_fallbacks() -> None:
    defaults = load_template_defaults()
    assert defaults.fallbacks == {}
    assert defaults.upstream_event_pattern["detail-type"] == [defaults.upstream_detail_type]
