"""A message moved by the client-side redrive keeps its order (completion_tagger.redrive.order): one without
`issued_at` gets its original SentTimestamp as `issued_at`, inside `detail` for an EventBridge event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from completion_tagger.redrive.order import with_issued_at
from tagger.logic.parsing import parse_tag_request

SENT_MS = "1764861158913"  # 2025-12-04T15:12:38.913Z
SENT_AS_ISSUED_AT = "2025-12-04T15:12:38.913000Z"


def test_a_request_without_issued_at_gets_its_sent_timestamp() -> None:
    body = json.dumps({"completion_id": "chatcmpl-a", "metadata": {"k": "v"}, "request_id": "r1"})

    moved = with_issued_at(body, SENT_MS)

    assert json.loads(moved) == {**json.loads(body), "issued_at": SENT_AS_ISSUED_AT}
    assert parse_tag_request(moved).issued_at == SENT_AS_ISSUED_AT


def test_an_eventbridge_event_gets_it_inside_detail() -> None:
    event: dict[str, Any] = {
        "version": "0",
        "id": "e-1",
        "detail-type": "CompletionTagRequested",
        "source": "upstream",
        "detail": {"completion_id": "chatcmpl-a", "metadata": {"k": "v"}},
    }

    moved = json.loads(with_issued_at(json.dumps(event), SENT_MS))

    assert moved["detail"] == {**event["detail"], "issued_at": SENT_AS_ISSUED_AT}
    assert "issued_at" not in moved
    assert parse_tag_request(json.dumps(moved)).issued_at == SENT_AS_ISSUED_AT


def test_a_null_issued_at_counts_as_none() -> None:
    body = json.dumps({"completion_id": "chatcmpl-a", "metadata": {"k": "v"}, "issued_at": None})

    assert json.loads(with_issued_at(body, SENT_MS))["issued_at"] == SENT_AS_ISSUED_AT


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"completion_id": "chatcmpl-a", "metadata": {"k": "v"}, "issued_at": "2026-01-01T00:00:00Z"}),
        json.dumps({"detail-type": "X", "source": "s", "detail": {"issued_at": "2026-01-01T00:00:00Z"}}),
        json.dumps({"detail-type": "X", "source": "s", "detail": "not an object"}),
        "not json {",
        "[1, 2]",
    ],
)
def test_its_own_issued_at_and_bodies_that_are_not_requests_are_moved_unchanged(body: str) -> None:
    assert with_issued_at(body, SENT_MS) == body


def test_without_a_sent_timestamp_the_body_is_unchanged() -> None:
    body = json.dumps({"completion_id": "chatcmpl-a", "metadata": {"k": "v"}})

    assert with_issued_at(body, None) == body
    assert with_issued_at(body, "") == body
