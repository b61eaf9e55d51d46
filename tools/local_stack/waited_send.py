"""`make run` sends its queue samples as a user would send a backfill: `completion-tagger send --wait`'s path
(`send_and_maybe_wait`, what `send_tag_requests(wait=True)` runs), on a thread of its own, so the run can show
each result event as it arrives while the sender follows the same events to its own per-line report
(docs/sending.md, "A backfill, end to end")."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import boto3

from completion_tagger.api import resolve_destination, send_and_maybe_wait
from completion_tagger.requests import Line, object_lines
from completion_tagger.send_report import SendReport
from completion_tagger.validation import Rejected, validate
from completion_tagger.waiting.send_and_wait import ResultsLocation

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
        """Send on the thread, and return once the bodies are sent (the run's other sends come after them, as
        before); the thread goes on following the results."""
        sent = threading.Event()

        def send() -> None:
            try:
                session = boto3.session.Session()
                self.report = send_and_maybe_wait(
                    object_lines(list(bodies)),
                    session,
                    resolve_destination(session, queue_url=queue_url, stack_name=None, event_bus=None),
                    self._location,
                    rate=None,
                    request_id_prefix=REQUEST_ID_PREFIX,
                    progress=False,
                    retry=None,
                    timeout_seconds=self._timeout,
                    results_file=self._results_file,
                    on_sent=lambda report: sent.set(),
                )
            except Exception as error:  # reported by the run, which keeps its own checks
                self.error = error
            finally:
                sent.set()

        self._thread = threading.Thread(target=send, name="send-wait", daemon=True)
        self._thread.start()
        sent.wait()

    def join(self, timeout_seconds: float) -> SendReport | None:
        """The sender's report once it has ended (None if it is still waiting, or failed: see `error`)."""
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        return self.report
