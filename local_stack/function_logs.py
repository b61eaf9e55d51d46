"""Where the function's own output goes during a local run: a log file, like CloudWatch Logs.

The handler writes structured JSON logs and EMF metric blobs to stdout. Printed inline they would
bury the run's readable lines, so by default everything the function writes to stdout or stderr,
while it is imported and while it runs, goes to a file instead. Powertools' Logger keeps the stream
that was `sys.stdout` when the Logger was made, which is why the import happens inside `capture()`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from local_stack.event_source import Handler


class FunctionLogSink:
    """Redirects the function's stdout/stderr to `path`; with `path=None` output stays on the terminal."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> FunctionLogSink:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", buffering=1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Inside this block, `print` and anything bound to sys.stdout/stderr now writes to the file."""
        if self._file is None:
            yield
            return
        with contextlib.redirect_stdout(self._file), contextlib.redirect_stderr(self._file):
            yield

    def write(self, text: str) -> None:
        """Add a line of the runner's own (e.g. a failed invocation's traceback) to the log."""
        target = self._file if self._file is not None else sys.stderr
        target.write(text if text.endswith("\n") else text + "\n")

    def wrap(self, handler: Handler) -> Handler:
        """The handler with its output captured on every invocation."""

        def captured(event: dict[str, Any], context: Any) -> Any:
            with self.capture():
                return handler(event, context)

        return captured

    def load(self, loader: Callable[[], Handler]) -> Handler:
        """Run `loader` (the import, i.e. the cold start) with output captured; return the wrapped handler."""
        with self.capture():
            handler = loader()
        return self.wrap(handler)
