"""The outcome of one send: what was read, sent, refused and lost, line by line."""

from __future__ import annotations

from dataclasses import dataclass, field

from completion_tagger.validation import Rejected
from completion_tagger.waiting.line_outcomes import WaitReport


@dataclass
class SendReport:
    """Counts and the lines that were not sent. `ok` is true only when every line read was sent
    (or, on a dry run, every line was valid)."""

    destination: str
    request_id_prefix: str
    dry_run: bool = False
    read: int = 0
    sent: int = 0
    invalid: list[Rejected] = field(default_factory=list)
    failed: list[Rejected] = field(default_factory=list)
    calls: int = 0
    stopped: str | None = None  # why sending stopped before the end of the input
    last_line: int = 0  # the number of the last line read
    results: WaitReport | None = None  # with --wait: what became of every line

    @property
    def ok(self) -> bool:
        """Every line was sent; with --wait, also tagged or a duplicate."""
        sent = not self.invalid and not self.failed and self.stopped is None
        return sent and (self.results is None or self.results.ok)

    @property
    def valid(self) -> int:
        return self.read - len(self.invalid)

    def problem_lines(self) -> list[str]:
        """One line per request not sent, in input order."""
        rows = [(item.number, f"line {item.number}: invalid: {item.reason}") for item in self.invalid]
        rows += [(item.number, f"line {item.number}: not sent: {item.reason}") for item in self.failed]
        return [text for _, text in sorted(rows)]

    def summary_lines(self) -> list[str]:
        if self.dry_run:
            counts = f"read {self.read}, valid {self.valid}, invalid {len(self.invalid)}  (dry run: nothing sent)"
        else:
            counts = (
                f"read {self.read}, sent {self.sent}, invalid {len(self.invalid)}, failed {len(self.failed)}  "
                f"(to {self.destination})"
            )
        lines = [
            counts,
            f"request ids: lines without one got {self.request_id_prefix}-<line number>",
        ]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}; nothing after line {self.last_line} was read")
        return lines


class SendInterrupted(KeyboardInterrupt):
    """Sending was interrupted (Ctrl-C, or SIGTERM on the command line); `report` says what was sent.

    A KeyboardInterrupt, so a program that does not catch it stops as on any Ctrl-C. Every request read
    is in the report: sent, or failed with why (a request whose call was in flight when the interruption
    came is named as one that may have been sent).
    """

    def __init__(self, report: SendReport) -> None:
        super().__init__("sending was interrupted")
        self.report = report
