"""`send --wait`'s pieces without AWS: the subscription's pattern, following events, the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from completion_tagger.waiting.follow import ResultSources, SentLine, follow
from completion_tagger.waiting.line_outcomes import LineResult, WaitReport
from completion_tagger.waiting.subscription import MAX_PATTERN_CHARACTERS, event_pattern
from tagger.models import TagRequest


def test_the_pattern_matches_the_runs_prefix_and_the_lines_own_ids() -> None:
    pattern = event_pattern("completion-tagger", "send-1", ["mine-2", "mine-1", "mine-2"])
    assert pattern["source"] == ["completion-tagger"]
    assert pattern["detail"]["request_id"] == [{"prefix": "send-1-"}, "mine-1", "mine-2"]


def test_too_many_own_ids_match_every_result_event_of_the_source() -> None:
    pattern = event_pattern("completion-tagger", "send-1", [f"own-{n:05d}" for n in range(1000)])
    assert "detail" not in pattern
    assert len(json.dumps(pattern)) < MAX_PATTERN_CHARACTERS


class Events:
    def __init__(self, *batches: list[dict[str, Any]]) -> None:
        self._batches = list(batches)

    def receive(self) -> Iterator[dict[str, Any]]:
        yield from (self._batches.pop(0) if self._batches else [])


class Completed:
    def __init__(self, *completion_ids: str) -> None:
        self._ids = set(completion_ids)

    def is_completed(self, request: TagRequest) -> bool:
        return request.completion_id in self._ids


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0  # every look at the clock is a second later: a receive waits about that long
        return self.now


def sent(number: int, completion: str, message_id: str | None = None) -> SentLine:
    request = TagRequest(completion_id=completion, metadata={"k": "v"}, request_id=f"run-{number}")
    return SentLine(number, request, f"run-{number}", message_id or f"m-{number}")


def event(detail_type: str, number: int, **detail: Any) -> dict[str, Any]:
    return {
        "source": "completion-tagger",
        "detail-type": detail_type,
        "detail": {"request_id": f"run-{number}", "message_id": f"m-{number}", **detail},
    }


def test_events_end_their_lines_and_a_quiet_completed_line_is_a_duplicate() -> None:
    lines = [sent(1, "c1"), sent(2, "c2"), sent(3, "c3"), sent(4, "c4"), sent(5, "c5")]
    error = {"code": "not_found", "message": "no such completion", "retryable": False}
    last = {"code": "rate_limited", "message": "429", "retryable": True}
    sources = ResultSources(
        Events(
            [event("CompletionTagged", 1), event("CompletionTagFailed", 2, error=error)],
            [event("CompletionTagFailed", 3, error=last), {"source": "someone-else", "detail": {}}],
        ),
        "completion-tagger",
        Completed("c4"),
        lambda: (set(), set()),
    )
    report = follow(lines, [], sources, timeout_seconds=30, clock=Clock())
    outcomes = {line.line: (line.outcome, line.code) for line in report.lines}
    assert outcomes == {
        1: ("tagged", None),
        2: ("failed", "not_found"),
        3: ("dead_lettered", "rate_limited"),
        4: ("duplicate", None),
        5: ("no_result", None),
    }
    assert report.timed_out and not report.ok


def test_a_message_found_in_the_dead_letter_queue_is_dead_lettered() -> None:
    sources = ResultSources(Events(), "completion-tagger", Completed(), lambda: ({"m-1"}, set()))
    report = follow([sent(1, "c1")], [], sources, timeout_seconds=30, clock=Clock())
    assert [line.outcome for line in report.lines] == ["dead_lettered"]


def test_ok_only_when_every_line_is_tagged_or_a_duplicate() -> None:
    assert WaitReport([LineResult(1, "r-1", "m-1", "tagged"), LineResult(2, "r-2", "m-2", "duplicate")]).ok
    assert not WaitReport([LineResult(1, "r-1", "m-1", "tagged"), LineResult(2, None, None, "not_sent")]).ok
    assert not WaitReport([LineResult(1, "r-1", "m-1", "tagged")], leftovers=["rule x: denied"]).ok
    assert not WaitReport([LineResult(1, "r-1", "m-1", "tagged")], interrupted=True).ok
