"""Each record's body is read once, when the batch is ordered, and that reading travels with the record."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tagger.errors import ApiError
from tagger.logic import parsing
from tagger.logic.records import ParsedRecord
from tests.unit.fakes import Rig, sqs_record


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each body was read as JSON."""
    counts: Counter[str] = Counter()
    load = parsing._load_json

    def counting(body: str) -> Any:
        counts[body] += 1
        return load(body)

    monkeypatch.setattr(parsing, "_load_json", counting)
    return counts


def test_every_body_is_read_exactly_once_through_a_whole_batch(reads: Counter[str]) -> None:
    rig = Rig(max_receive_count=1)  # last delivery: a put-back record also publishes its failure
    rig.api.seed("c1")
    rig.api.seed("c2")
    rig.api.failures["c2"] = [ApiError("upstream_error", "OpenAI API answered 500", retryable=True, status=500)] * 3
    bodies: list[str | dict[str, Any]] = [
        {"completion_id": "c1", "metadata": {"a": "1"}},
        {"completion_id": "c1", "metadata": {"b": "2"}},
        {"completion_id": "c2", "metadata": {"a": "1"}},
        {"completion_id": "c2", "metadata": {"b": "2"}},  # held back behind the one before it
        {"completion_id": "c3", "metadata": {}},  # invalid: a merge that does nothing
        "not json",
    ]
    records = [sqs_record(body) for body in bodies]
    response, outcomes = rig.run(records)
    assert len(response["batchItemFailures"]) == 2
    assert outcomes.tagged == 2 and outcomes.failed["validation_error"] == 2
    assert sorted(reads.values()) == [1] * len(records)
    assert set(reads) == {record["body"] for record in records}


def test_a_parsed_record_carries_the_request_or_why_not_and_its_chain() -> None:
    good = ParsedRecord(sqs_record({"completion_id": "c1", "metadata": {"a": "1"}, "request_id": "r1"}), 0)
    assert good.ordering_key == "completion:c1"
    assert good.correlation_ids() == ("c1", "r1")
    invalid = ParsedRecord(sqs_record({"completion_id": "c1", "metadata": 5, "request_id": "r2"}), 1)
    assert invalid.ordering_key == "completion:c1"  # still ordered with its completion's other records
    assert invalid.correlation_ids() == ("c1", "r2")
    unreadable = ParsedRecord(sqs_record("{"), 2)
    assert unreadable.ordering_key == f"message:{unreadable.message_id}"
    assert unreadable.correlation_ids() == (None, None)
