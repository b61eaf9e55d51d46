"""Keeping a server in the foreground until Ctrl-C or SIGTERM (`make local-openai`, `make local-services`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def wait_for_stop_signal(ready: Callable[[], None]) -> None:
    """Take over SIGINT and SIGTERM, call `ready` (say where the servers listen), then block until one arrives.

    The handlers only set an event the main thread polls, so a signal never interrupts a server's own threads;
    `ready` runs after the handlers are in place, so a signal sent as soon as it is announced stops the wait.
    """
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    ready()
    while not stopping.wait(0.5):
        pass
