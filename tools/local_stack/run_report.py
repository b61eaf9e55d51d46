"""What a local run prints: one line per result event, progress on long runs, and the final summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_stack.fleet import ContainerStats, FleetStats
from local_stack.observer import FAILED, TAGGED, ResultEvent
from local_stack.send_order import Verification

METADATA_WIDTH = 70
MESSAGE_WIDTH = 100


class Redactor:
    """Replaces secrets (the API key) in any text before it is printed."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = [secret for secret in secrets if secret]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


@dataclass
class RunTally:
    """Result events seen so far, counted by outcome and by the SQS message they are about."""

    tagged: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # "code" or "code (retryable)"
    other: int = 0
    events_by_message: Counter[str] = field(default_factory=Counter)

    def add(self, event: ResultEvent) -> None:
        if event.detail_type == TAGGED:
            self.tagged += 1
        elif event.detail_type == FAILED:
            self.failed[event.error_code + (" (retryable)" if event.retryable else "")] += 1
        else:
            self.other += 1
        if event.message_id:
            self.events_by_message[event.message_id] += 1

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def duplicates(self, deleted_message_ids: Iterable[str]) -> int:
        """Messages that ended (were deleted) without any result event: idempotent repeats."""
        return sum(1 for message_id in deleted_message_ids if message_id not in self.events_by_message)

    def messages_with_several_events(self) -> int:
        return sum(1 for count in self.events_by_message.values() if count > 1)


def event_line(event: ResultEvent, redact: Redactor) -> str:
    """`CompletionTagged  <id>  merge ok: k=v, ...  [request]` or the failure's code, status and message."""
    completion = event.completion_id or "-"
    request = event.detail.get("request_id")
    suffix = f"  [{request}]" if request else ""
    if event.detail_type == TAGGED:
        metadata = event.detail.get("metadata")
        pairs = metadata_pairs(metadata) if isinstance(metadata, dict) else "?"
        outcome = f"{event.detail.get('mode', 'merge')} ok: {_clip(pairs, METADATA_WIDTH)}"
    elif event.detail_type == FAILED:
        status = event.error.get("status")
        where = f"HTTP {status}, " if status else ""
        kind = "retryable" if event.retryable else "permanent"
        message = _clip(str(event.error.get("message", "")), MESSAGE_WIDTH)
        outcome = f"{event.error_code} ({where}{kind}): {message}"
    else:
        outcome = _clip(str(event.detail), MESSAGE_WIDTH)
    return redact(f"  {event.detail_type:<20} {completion:<24} {outcome}{suffix}")


def progress_line(
    ended: int, total: int, pending: int, dead_lettered: int, tagged: int, failed: int, elapsed: float
) -> str:
    return (
        f"  ... {elapsed:.0f} s: {ended}/{total} messages ended ({tagged} tagged, {failed} failed,"
        f" {dead_lettered} dead-lettered), {pending} still queued or in flight"
    )


@dataclass(frozen=True)
class Summary:
    """Everything the final summary reports."""

    sent_via_sqs: int
    sent_via_eventbridge: int
    tally: RunTally
    duplicates: int
    dead_lettered: int
    dead_letter_queue: str
    api_stats: Mapping[str, Any] | None
    containers: FleetStats
    elapsed_seconds: float
    function_log: str
    verification: Verification | None = None
    deleted_twice: int = 0  # messages deleted by more than one invocation


def summary_lines(summary: Summary) -> list[str]:
    tally = summary.tally
    sent = summary.sent_via_sqs + summary.sent_via_eventbridge
    failed = ", ".join(f"{code} {count}" for code, count in sorted(tally.failed.items())) or "none"
    totals = summary.containers.totals
    containers = len(summary.containers.containers)
    invocations = (
        f"records delivered {totals.records_delivered}, put back {totals.records_put_back}"
        + (f", whole batch failed {totals.failed_invocations}x" if totals.failed_invocations else "")
        + f", in {containers} container{'s' if containers != 1 else ''}:"
    )
    lines = [
        "Summary",
        _row(
            "messages sent",
            sent,
            f"{summary.sent_via_sqs} to the queue, "
            f"{summary.sent_via_eventbridge} through EventBridge rules (upstream and mapping)",
        ),
        _row("succeeded", tally.tagged, "CompletionTagged"),
        _row("failed", tally.failed_total, f"CompletionTagFailed by error code: {failed}"),
        _row("duplicates", summary.duplicates, "ended with no event (idempotent repeats)"),
        _row("dead-lettered", summary.dead_lettered, f"in {summary.dead_letter_queue}"),
        _api_row(summary.api_stats),
        _row("invocations", totals.invocations, invocations),
        *(f"    {_container_work(container)}" for container in summary.containers.containers),
        *verification_lines(summary.verification),
        _row("elapsed", f"{summary.elapsed_seconds:.1f} s", ""),
        _row("function logs", summary.function_log, ""),
    ]
    if summary.deleted_twice:
        lines.append(
            f"  note: {summary.deleted_twice} message(s) were delivered again while an invocation still held them "
            "(the visibility timeout ran out) and deleted twice"
        )
    several = tally.messages_with_several_events()
    if several:
        lines.append(f"  note: {several} message(s) produced more than one result event")
    return lines


def verification_lines(verification: Verification | None) -> list[str]:
    """`verified` and, for each completion that differs, what it holds and what the send order gives."""
    if verification is None:
        return []
    if not verification.differences:
        names = ", ".join(verification.matched)
        return [_row("verified", len(verification.matched), f"completions match the send order: {names}")]
    lines = [
        _row(
            "verified",
            f"{len(verification.matched)} of {verification.checked}",
            "completions match the send order; these differ:",
        )
    ]
    for difference in verification.differences:
        lines.append(
            f"    {difference.completion_id} holds {metadata_pairs(difference.actual)}; "
            f"in send order its requests give {metadata_pairs(difference.expected)}"
        )
    return lines


def metadata_pairs(metadata: Mapping[str, str]) -> str:
    """`k=v, ...` in key order, or `(no metadata)`."""
    return ", ".join(f"{key}={value}" for key, value in sorted(metadata.items())) or "(no metadata)"


def container_lines(stats: FleetStats) -> list[str]:
    """The setup lines about the containers: how many, their processes and cold starts."""
    containers = stats.containers
    pids = ", ".join(str(container.pid) for container in containers)
    inits = sorted(container.init_seconds for container in containers if container.init_seconds is not None)
    cold = f"; cold start {inits[0]:.1f}–{inits[-1]:.1f} s" if inits else ""
    detail = f"Lambda-like, each a process of its own polling the queue (pids {pids}{cold})"
    return [_row("containers", len(containers), detail)]


def _container_work(container: ContainerStats) -> str:
    counters = container.counters
    gone = "" if container.state in ("ready", "stopped") else f", {container.state}"
    return (
        f"container {container.index} (pid {container.pid}): invocations {counters.invocations}, "
        f"records {counters.records_delivered}, put back {counters.records_put_back}{gone}"
    )


def _api_row(stats: Mapping[str, Any] | None) -> str:
    if stats is None:
        return _row("API calls", "n/a", "real OpenAI API: not counted locally")
    routes = _counts(stats.get("requests"))
    statuses = _counts(stats.get("statuses"))
    detail = routes + (f"; statuses {statuses}" if statuses else "")
    return _row("API calls", stats.get("total", "?"), detail)


def _counts(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return ", ".join(f"{key} {count}" for key, count in sorted(value.items()))


def _row(name: str, value: object, detail: str) -> str:
    return f"  {name:<15} {value!s:<6} {detail}".rstrip()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
