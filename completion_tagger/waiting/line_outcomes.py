"""What became of each line of a waited-for run, and the run's summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

# tagged / duplicate: done; failed: a non-retryable CompletionTagFailed; dead_lettered: retryable failure on the
# last delivery, or found in the dead-letter queue; no_result: nothing within the timeout; not_sent: invalid,
# or the send failed.
Outcome = Literal["tagged", "duplicate", "failed", "dead_lettered", "no_result", "not_sent"]
OUTCOMES: tuple[Outcome, ...] = ("tagged", "duplicate", "failed", "dead_lettered", "no_result", "not_sent")
SUCCESSFUL: frozenset[Outcome] = frozenset({"tagged", "duplicate"})


@dataclass
class LineResult:
    """One line of the input and what became of it (a line of `--results FILE`)."""

    line: int
    request_id: str | None
    message_id: str | None
    outcome: Outcome = "no_result"
    code: str | None = None
    message: str | None = None


@dataclass
class WaitReport:
    """Every line's result, in line order. `ok` only when every line was tagged or a duplicate."""

    lines: list[LineResult] = field(default_factory=list)
    timed_out: bool = False
    interrupted: bool = False
    leftovers: list[str] = field(default_factory=list)  # what the clean-up could not remove

    @property
    def ok(self) -> bool:
        return all(line.outcome in SUCCESSFUL for line in self.lines) and not self.interrupted and not self.leftovers

    def counts(self) -> Counter[str]:
        return Counter(line.outcome for line in self.lines)

    def failures_by_code(self) -> Counter[str]:
        return Counter(line.code or "unknown" for line in self.lines if line.outcome in ("failed", "dead_lettered"))

    def problem_lines(self) -> list[str]:
        """One line per line of the input that did not end well, in input order."""
        return [
            f"line {line.line}: {line.outcome}"
            + (f" {line.code}" if line.code else "")
            + (f": {line.message}" if line.message else "")
            for line in self.lines
            if line.outcome not in SUCCESSFUL and line.outcome != "not_sent"  # the send report named those
        ]

    def table_lines(self) -> list[str]:
        """The outcome table and, when there are failures, the failures by code."""
        counts = self.counts()
        rows = [f"{'outcome':<14}{'lines':>8}"] + [
            f"{outcome:<14}{counts[outcome]:>8}" for outcome in OUTCOMES if counts[outcome]
        ]
        rows.append(f"{'total':<14}{len(self.lines):>8}")
        by_code = self.failures_by_code()
        if by_code:
            rows += ["", f"{'failure code':<20}{'lines':>8}"]
            rows += [f"{code:<20}{count:>8}" for code, count in sorted(by_code.items())]
        if self.timed_out:
            rows.append("timed out: lines without a result are no_result")
        if self.interrupted:
            rows.append("interrupted: lines without a result are no_result")
        rows += [f"could not remove {leftover}" for leftover in self.leftovers]
        return rows

    def write_jsonl(self, path: Path) -> None:
        """One JSON object per line: line, request_id, message_id, outcome (and code and message on failures)."""
        with path.open("w", encoding="utf-8") as out:
            for line in self.lines:
                record = {key: value for key, value in asdict(line).items() if value is not None or key in _ALWAYS}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


_ALWAYS = frozenset({"line", "request_id", "message_id", "outcome"})
