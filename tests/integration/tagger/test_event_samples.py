"""Every `events/` sample (the `sam local invoke -e` files) through the real Lambda entry point."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from local_stack.lambda_context import LocalLambdaContext
from tests.integration.harness import EVENTS, Harness, failures, sample_environment, seed_sample_completions

pytestmark = pytest.mark.integration


@pytest.fixture
def app(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """`tagger.app` imported afresh with the environment Lambda would give it (events/env.json's keys)."""
    for name, value in sample_environment(harness).items():
        monkeypatch.setenv(name, value)
    seed_sample_completions(harness.api)
    sys.modules.pop("tagger.app", None)
    module = importlib.import_module("tagger.app")
    yield module
    sys.modules.pop("tagger.app", None)


def invoke(app: ModuleType, sample: str) -> tuple[dict[str, Any], dict[str, Any]]:
    event = json.loads((EVENTS / sample).read_text())
    return event, app.lambda_handler(event, LocalLambdaContext())


def test_merge_sample(app: ModuleType, harness: Harness) -> None:
    _, response = invoke(app, "sqs-merge.json")
    assert failures(response) == set()
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagged"
    assert harness.api.metadata_of("chatcmpl-demo-0001") == {"project": "demo", "reviewed": "true", "reviewer": "alice"}


def test_replace_sample(app: ModuleType, harness: Harness) -> None:
    _, response = invoke(app, "sqs-replace.json")
    assert failures(response) == set()
    assert harness.api.metadata_of("chatcmpl-demo-0002") == {"label": "golden", "split": "eval"}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]


def test_mixed_batch_sample_tags_once_rejects_the_typo_and_skips_the_duplicate(
    app: ModuleType, harness: Harness
) -> None:
    event, response = invoke(app, "sqs-mixed-batch.json")
    assert failures(response) == set()
    valid, typo, _duplicate = (record["messageId"] for record in event["Records"])
    outcomes = {e["detail"]["message_id"]: e["detail-type"] for e in harness.events(2)}
    assert outcomes == {valid: "CompletionTagged", typo: "CompletionTagFailed"}
    assert harness.api.stats()["updates_by_completion"] == {"chatcmpl-demo-0003": 1}


def test_eventbridge_envelope_sample(app: ModuleType, harness: Harness) -> None:
    _, response = invoke(app, "sqs-eventbridge-envelope.json")
    assert failures(response) == set()
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagged"
    assert event["detail"]["completion_id"] == "chatcmpl-demo-0004"
