"""Where the function's own output goes during a local run: a log file, like CloudWatch Logs.

The handler writes structured JSON logs and EMF metric blobs to stdout. Printed inline they would
bury the run's readable lines, so by default they go to a file: the run starts it empty, and every
container appends its whole output to it, line by line (local_stack.container). The runner adds
lines of its own, such as a failed invocation's traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO


class FunctionLogSink:
    """The run's function log at `path`, emptied at the start; with `path=None` output stays on the terminal."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> FunctionLogSink:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")
            # Append mode, like the containers: every write lands at the end, whoever wrote last.
            self._file = self.path.open("a", encoding="utf-8", buffering=1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, text: str) -> None:
        """Add a line of the runner's own (e.g. a failed invocation's traceback) to the log."""
        target = self._file if self._file is not None else sys.stderr
        target.write(text if text.endswith("\n") else text + "\n")
