"""SIGTERM stops a command the way Ctrl-C does, so it can say what it did before it ends.

`kill`, a CI job's timeout and a container's stop send SIGTERM, whose default is to end the process on the
spot: a send would end without its summary, and nobody would know which lines went out.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def interruptions_on_sigterm() -> Iterator[None]:
    """Inside: SIGTERM raises KeyboardInterrupt, as SIGINT (Ctrl-C) does. Only in the main thread, where
    Python runs signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
