"""`make run` sends its queue samples as a user would send a backfill: `completion-tagger send --wait`'s Python
API (`send_tag_requests(wait=True)`), on a thread of its own, so the run can show each result event as it
arrives while the sender follows the same events to its own per-line report (docs/sending.md, "A backfill,
end to end")."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from completion_tagger import send_tag_requests
from completion_tagger.report import SendReport
from completion_tagger.requests import Line
from completion_tagger.validation import Rejected, validate
from completion_tagger.waiting.run import ResultsLocation

REQUEST_ID_PREFIX = "local-stack-wait"


class WaitedSend:
    """One `send --wait` of JSON bodies to the queue, running in the background until every line has ended."""

    def __init__(self, location: ResultsLocation, timeout_seconds: float, results_file: Path | None = None) -> None:
        self._location = location
        self._timeout = timeout_seconds
        self._results_file = results_file
        self._thread: threading.Thread | None = None
        self.report: SendReport | None = None
        self.error: BaseException | None = None

    @staticmethod
    def refused(bodies: Sequence[str]) -> list[Rejected]:
        """The bodies the sender will refuse (its validation, by line number from 1)."""
        checked = (validate(Line(number, body), REQUEST_ID_PREFIX) for number, body in enumerate(bodies, start=1))
        return [item for item in checked if isinstance(item, Rejected)]

    def start(self, bodies: Sequence[str], queue_url: str) -> None:
        def send() -> None:
            try:
                self.report = send_tag_requests(
                    list(bodies),
                    queue_url=queue_url,
                    wait=True,
                    timeout_seconds=self._timeout,
                    results_location=self._location,
                    results_file=self._results_file,
                    request_id_prefix=REQUEST_ID_PREFIX,
                )
            except Exception as error:  # reported by the run, which keeps its own checks
                self.error = error

        self._thread = threading.Thread(target=send, name="send-wait", daemon=True)
        self._thread.start()

    def join(self, timeout_seconds: float) -> SendReport | None:
        """The sender's report once it has ended (None if it is still waiting, or failed: see `error`)."""
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        return self.report
