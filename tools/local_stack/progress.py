"""A progress line every few seconds on long runs, even while one invocation is still running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ProgressTicker:
    """Calls `say(line(elapsed_seconds))` every `every` seconds from a daemon thread until stopped.

    `line` must only read state the main thread replaces atomically (ints, tuples), never iterate
    collections it mutates.
    """

    def __init__(self, say: Callable[[str], None], line: Callable[[float], str], every: float = 2.0) -> None:
        self._say = say
        self._line = line
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="local-stack-progress", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> ProgressTicker:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _tick(self) -> None:
        while not self._stopped.wait(self._every):
            self._say(self._line(time.monotonic() - self._started))
