"""Follow a run's result events until every sent line has ended, or the timeout.

A line ends with its result event (`CompletionTagged`, or `CompletionTagFailed`: non-retryable is `failed`,
retryable — the last delivery before the dead-letter queue — is `dead_lettered`). A duplicate ends without
an event, so once no event has come for a few seconds the follower asks the idempotency table about the
lines still open (a completed request without an event of this run is a duplicate) and looks in the
dead-letter queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm import tqdm

from completion_tagger.waiting.completed import CompletedRequests
from completion_tagger.waiting.line_outcomes import LineResult, WaitReport
from tagger.models import TAGGED_DETAIL_TYPE, TagRequest

IDLE_SECONDS = 3.0  # no event for this long: look up the lines still open


@dataclass(frozen=True)
class SentLine:
    """A line that was sent: its number, request, request id and, when the destination gave one, message id."""

    number: int
    request: TagRequest
    request_id: str
    message_id: str | None


class EventSource(Protocol):
    def receive(self) -> Iterator[dict[str, Any]]: ...


class OpenLines(dict[int, SentLine]):
    """The lines still without an outcome, findable by message id, or by request id when the destination gave
    no message id (events sent to a bus become messages whose ids the sender never sees)."""

    def __init__(self, lines: Sequence[SentLine]) -> None:
        super().__init__((line.number, line) for line in lines)
        self._by_message_id = {line.message_id: line.number for line in lines if line.message_id}
        self._by_request_id: dict[str, list[int]] = {}
        for line in lines:
            if not line.message_id:
                self._by_request_id.setdefault(line.request_id, []).append(line.number)

    def find(self, message_id: object, request_id: object) -> int | None:
        number = self._by_message_id.get(message_id) if isinstance(message_id, str) else None
        if number in self:
            return number
        if isinstance(request_id, str):
            return next((n for n in self._by_request_id.get(request_id, []) if n in self), None)
        return None


@dataclass(frozen=True)
class ResultSources:
    """Where a run's outcomes are read."""

    events: EventSource
    event_source: str  # the `source` of the stack's result events
    completed: CompletedRequests
    dead_letters: Callable[[], tuple[set[str], set[str]]]  # message ids and request ids in the DLQ


def follow(
    sent: Sequence[SentLine],
    not_sent: Sequence[LineResult],
    sources: ResultSources,
    *,
    timeout_seconds: float,
    progress: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> WaitReport:
    """Every line's outcome, in line order. Ctrl-C stops the wait early (`interrupted`), keeping what is known."""
    results = {line.number: LineResult(line.number, line.request_id, line.message_id) for line in sent}
    open_lines = OpenLines(sent)
    report = WaitReport()
    deadline = clock() + timeout_seconds
    last_event = last_lookup = clock()
    with tqdm(total=len(sent), unit="line", desc="results", disable=None if progress else True, leave=False) as bar:
        try:
            while open_lines and clock() < deadline:
                ended = 0
                for event in sources.events.receive():
                    ended += _settle_event(event, sources.event_source, open_lines, results)
                    last_event = clock()
                now = clock()
                if now - last_event >= IDLE_SECONDS and now - last_lookup >= IDLE_SECONDS:
                    ended += _settle_quiet_lines(open_lines, results, sources)
                    last_lookup = now
                bar.update(ended)
            report.timed_out = bool(open_lines)
        except KeyboardInterrupt:
            report.interrupted = True
    report.lines = sorted([*results.values(), *not_sent], key=lambda result: result.line)
    return report


def _settle_event(event: dict[str, Any], source: str, open_lines: OpenLines, results: dict[int, LineResult]) -> int:
    detail = event.get("detail")
    if event.get("source") != source or not isinstance(detail, dict):
        return 0
    number = _line_of(detail, open_lines)
    if number is None:
        return 0
    result = results[number]
    result.message_id = result.message_id or detail.get("message_id")
    if event.get("detail-type") == TAGGED_DETAIL_TYPE:
        result.outcome = "tagged"
    else:
        error = detail.get("error")
        error = error if isinstance(error, dict) else {}
        result.outcome = "dead_lettered" if error.get("retryable") else "failed"
        result.code = str(error.get("code") or "unknown")
        result.message = str(error.get("message") or "")
    del open_lines[number]
    return 1


def _line_of(detail: dict[str, Any], open_lines: OpenLines) -> int | None:
    """The open line an event is about: by message id when known, else the first open line with its request id."""
    return open_lines.find(detail.get("message_id"), detail.get("request_id"))


def _settle_quiet_lines(open_lines: OpenLines, results: dict[int, LineResult], sources: ResultSources) -> int:
    ended = 0
    dead_message_ids, dead_request_ids = sources.dead_letters()
    for number, line in list(open_lines.items()):
        result = results[number]
        if (line.message_id and line.message_id in dead_message_ids) or (
            line.message_id is None and line.request_id in dead_request_ids
        ):
            result.outcome, result.message = "dead_lettered", "in the dead-letter queue (no result event came)"
        elif sources.completed.is_completed(line.request):
            result.outcome = "duplicate"
        else:
            continue
        del open_lines[number]
        ended += 1
    return ended
