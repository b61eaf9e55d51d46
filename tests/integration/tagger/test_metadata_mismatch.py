"""When the API's answer to a write is not the metadata written, the function says so.

OpenAI does not document whether its update replaces the metadata or merges into it; the function assumes
it replaces. The local OpenAI server merges instead when its `metadata_update` knob is "merge", so a removed
key stays: the function must count it (`MetadataMismatch`), log it, and publish the API's answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import Harness, Seeder

pytestmark = pytest.mark.integration


@pytest.fixture
def merging_api(harness: Harness) -> Iterator[None]:
    harness.api.configure(metadata_update="merge")
    yield
    harness.api.configure(metadata_update="replace")


def mismatches(harness: Harness) -> list[float]:
    return list(harness.metrics.metric_set.get("MetadataMismatch", {}).get("Value", []))


@pytest.mark.usefixtures("merging_api")
def test_a_removed_key_the_api_kept_is_counted_logged_and_published_as_the_api_answered(
    harness: Harness, seed: Seeder, caplog: pytest.LogCaptureFixture
) -> None:
    harness.metrics.clear_metrics()
    completion = seed({"keep": "1", "drop": "x"})
    response, _ = harness.run(harness.service(), [{"completion_id": completion, "metadata": {}, "remove": ["drop"]}])

    assert response == {"batchItemFailures": []}
    assert mismatches(harness) == [1.0]
    assert "the API's answer differs from the metadata written" in caplog.messages
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagged"
    assert event["detail"]["metadata"] == {"keep": "1", "drop": "x"}  # what the API holds, not what was meant


def test_an_api_that_replaces_reports_no_mismatch(harness: Harness, seed: Seeder) -> None:
    harness.metrics.clear_metrics()
    completion = seed({"keep": "1", "drop": "x"})
    response, _ = harness.run(harness.service(), [{"completion_id": completion, "metadata": {}, "remove": ["drop"]}])

    assert response == {"batchItemFailures": []}
    assert mismatches(harness) == [0.0]
    assert harness.events(1)[0]["detail"]["metadata"] == {"keep": "1"}
