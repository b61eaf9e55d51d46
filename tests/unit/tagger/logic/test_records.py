"""Each record's body is read once, when the batch is ordered, and that reading travels with the record."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tagger.errors import CompletionsApiError, InvalidTagRequest
from tagger.logic import parsing
from tagger.logic.records import ParsedRecord
from tagger.models import TagRequest
from tagger.ports import ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP
from tests.shared.fakes import Rig, sqs_record


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
    rig.api.failures["c2"] = [
        CompletionsApiError("upstream_error", "OpenAI API answered 500", retryable=True, status=500)
    ] * 3
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


def test_the_order_is_issued_at_where_present_else_the_sent_timestamp_in_microseconds() -> None:
    sent_ms = 1_733_000_000_123
    issued = ParsedRecord(
        sqs_record(
            {"completion_id": "c1", "metadata": {"a": "1"}, "issued_at": "2024-11-30T20:53:20.000007Z"}, sent_ms=sent_ms
        ),
        0,
    )
    assert issued.order_token == f"{1_733_000_000_000_007:018d}/{issued.message_id}"
    plain = ParsedRecord(sqs_record({"completion_id": "c1", "metadata": {"a": "1"}}, sent_ms=sent_ms), 1)
    assert plain.order_token == f"{sent_ms * 1000:018d}/{plain.message_id}"
    # Two lines of one SendMessageBatch share a SentTimestamp: their issued_at orders them, not the batch.
    first = ParsedRecord(
        sqs_record(
            {"completion_id": "c1", "metadata": {"a": "1"}, "issued_at": "2024-11-30T20:53:20.2Z"},
            sent_ms=sent_ms + 5000,
        ),
        2,
    )
    second = ParsedRecord(
        sqs_record(
            {"completion_id": "c1", "metadata": {"a": "2"}, "issued_at": "2024-11-30T20:53:20.1Z"},
            sent_ms=sent_ms + 5000,
        ),
        3,
    )
    assert second.order_token < first.order_token


def test_an_issued_at_more_than_five_minutes_after_the_send_is_a_validation_error_naming_it() -> None:
    sent_ms = 1_733_000_000_000  # 2024-11-30T20:53:20Z
    body = {"completion_id": "c1", "metadata": {"a": "1"}, "request_id": "r1"}
    late = ParsedRecord(sqs_record({**body, "issued_at": "2024-11-30T20:58:20.000001Z"}, sent_ms=sent_ms), 0)
    assert isinstance(late.request, InvalidTagRequest)
    assert late.request.message.startswith("issued_at: ") and "5 minutes" in late.request.message
    assert late.correlation_ids() == ("c1", "r1")
    at_the_limit = ParsedRecord(sqs_record({**body, "issued_at": "2024-11-30T20:58:20Z"}, sent_ms=sent_ms), 1)
    assert isinstance(at_the_limit.request, TagRequest)
    envelope = {
        "detail-type": "CompletionTagRequested",
        "source": "team",
        "detail": {**body, "issued_at": "2030-01-01T00:00:00Z"},
    }
    assert isinstance(ParsedRecord(sqs_record(envelope, sent_ms=sent_ms), 2).request, InvalidTagRequest)


def test_a_requeued_copy_keeps_the_original_identity_and_order() -> None:
    original = sqs_record({"completion_id": "c1", "metadata": {"a": "1"}}, sent_ms=1_733_000_000_000)
    copy = sqs_record(original["body"], sent_ms=1_733_000_900_000)
    copy["messageAttributes"] = {
        ORIGINAL_MESSAGE_ID: {"dataType": "String", "stringValue": original["messageId"]},
        ORIGINAL_SENT_TIMESTAMP: {"dataType": "Number", "stringValue": "1733000000000"},
    }
    parsed_original, parsed_copy = ParsedRecord(original, 0), ParsedRecord(copy, 1)
    assert parsed_copy.identity == original["messageId"] != parsed_copy.message_id
    assert parsed_copy.order_token == parsed_original.order_token
