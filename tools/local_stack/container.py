"""One Lambda-like container: a process of its own that imports the handler and polls the queue.

`container_main` is what a `ContainerFleet` (local_stack.fleet) starts in a fresh interpreter
(multiprocessing's *spawn*): it sets the function's environment, imports the handler (its own cold
start, its own boto3 and httpx clients), then polls the queue with its own `SqsEventSourceMapping`
and invokes the handler until it is told to stop, finishing the invocation in progress first, as a
Lambda container does. Nothing is shared with the parent or the other containers except the queue,
the tables and the APIs, so nothing held in one process' memory can stand in for coordination.

It reports to the parent over a pipe of its own (a SIGKILLed container can then damage nothing but its
own pipe): ready or failed to start, each invocation's start (its message ids) and end (its
`BatchReport`), and poller errors.

Tests can wrap the handler of a container (e.g. to fault the AWS calls it makes): the variable
`LOCAL_STACK_HANDLER_WRAPPER` names a `module:function` that is called with the function's environment
before the handler is imported (so it can hook the clients the cold start creates) and returns a function
that wraps the handler.
"""

from __future__ import annotations

import importlib
import io
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Literal, cast

from local_stack.event_source import BatchReport, Handler, SqsEventSourceMapping
from local_stack.function_env import load_handler

POLL_ERROR_BACKOFF_SECONDS = 0.5
HANDLER_WRAPPER_VARIABLE = "LOCAL_STACK_HANDLER_WRAPPER"


@dataclass(frozen=True)
class ContainerSpec:
    """What every container of a fleet gets: the queue, the mapping's settings and the environment.

    `environment` is the function's whole environment (the function's variables plus the AWS ones
    that point boto3 at the endpoint); `function_log` is the file each container appends its output
    to (None: the terminal).
    """

    queue_url: str
    queue_arn: str
    environment: Mapping[str, str] = field(repr=False)
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    function_timeout_seconds: float = 30.0
    function_log: Path | None = None
    dead_letter_queue_url: str | None = None


@dataclass(frozen=True)
class ContainerReady:
    """The handler imported and the poller is about to start; `init_seconds` is the cold start."""

    index: int
    pid: int
    init_seconds: float


@dataclass(frozen=True)
class ContainerFailed:
    """The container could not start (the handler failed to import, or the poller could not be made)."""

    index: int
    pid: int
    error: str
    traceback: str | None = None


@dataclass(frozen=True)
class InvocationStarted:
    """The handler was just called with these records; `request_id` is the context's `aws_request_id`,
    which every log line of the invocation carries as `function_request_id`."""

    index: int
    pid: int
    message_ids: tuple[str, ...]
    request_id: str = ""


@dataclass(frozen=True)
class InvocationEnded:
    """The handler returned (or failed) and the mapping deleted what it could."""

    index: int
    pid: int
    report: BatchReport


@dataclass(frozen=True)
class PollerError:
    """Receiving or deleting failed (e.g. the endpoint went away); the container retries after a pause."""

    index: int
    pid: int
    error: str


ExitCause = Literal["failed", "stopped", "killed", "died"]  # failed: to start; died: on its own, unasked


@dataclass(frozen=True)
class ContainerExited:
    """The process is gone, and why; `abandoned` is the batch it was invoking, if any (never reported).

    Made by the parent (a dead process reports nothing), so it is the last report of a container.
    """

    index: int
    pid: int
    exitcode: int | None
    cause: ExitCause
    abandoned: tuple[str, ...] = ()


Report = ContainerReady | ContainerFailed | InvocationStarted | InvocationEnded | PollerError | ContainerExited


class ParentGone(Exception):
    """The parent closed its end of the pipe or exited: nobody is left to report to."""


class _Channel:
    """Sends reports to the parent; a broken pipe means the parent is gone."""

    def __init__(self, connection: Connection, index: int) -> None:
        self._connection = connection
        self.index = index
        self.pid = os.getpid()

    def send(self, report: Report) -> None:
        try:
            self._connection.send(report)
        except (OSError, ValueError) as error:
            raise ParentGone from error


def container_main(
    index: int, spec: ContainerSpec, environment: Mapping[str, str], connection: Connection, stop: Event
) -> None:
    """The container process: cold start, then poll and invoke until `stop` is set or the parent is gone."""
    # Ctrl-C reaches the whole process group; the parent decides when containers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    channel = _Channel(connection, index)
    try:
        _route_output(spec.function_log)
        started = time.monotonic()
        try:
            wrap = _handler_wrapper(environment)
            handler = wrap(load_handler(environment))
            mapping = SqsEventSourceMapping(
                spec.queue_url,
                _announcing(handler, channel),
                queue_arn=spec.queue_arn,
                batch_size=spec.batch_size,
                batching_window_seconds=spec.batching_window_seconds,
                function_timeout_seconds=spec.function_timeout_seconds,
            )
        except Exception as error:  # any init failure is reported, then the container exits
            channel.send(ContainerFailed(index, channel.pid, str(error), traceback.format_exc()))
            sys.exit(1)
        channel.send(ContainerReady(index, channel.pid, time.monotonic() - started))
        while not stop.is_set() and os.getppid() == parent:
            _poll(mapping, channel, stop)
    except ParentGone:
        sys.exit(1)
    finally:
        connection.close()


def _poll(mapping: SqsEventSourceMapping, channel: _Channel, stop: Event) -> None:
    try:
        report = mapping.poll_once()
    except Exception as error:  # e.g. the endpoint is down: Lambda's poller keeps trying
        channel.send(PollerError(channel.index, channel.pid, f"{type(error).__name__}: {error}"))
        stop.wait(POLL_ERROR_BACKOFF_SECONDS)
        return
    if report is not None:
        channel.send(InvocationEnded(channel.index, channel.pid, report))


def _handler_wrapper(environment: Mapping[str, str]) -> Callable[[Handler], Handler]:
    """The wrapper that `LOCAL_STACK_HANDLER_WRAPPER` (`module:function`, called with the function's
    environment before the handler is imported) makes; none named: the handler as is."""
    name = environment.get(HANDLER_WRAPPER_VARIABLE)
    if not name:
        return lambda handler: handler
    module, _, function = name.partition(":")
    install = getattr(importlib.import_module(module), function)
    return cast(Callable[[Handler], Handler], install(environment))


def _announcing(handler: Handler, channel: _Channel) -> Handler:
    """The handler, reporting each invocation's message ids before it runs."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        ids = tuple(str(record.get("messageId")) for record in event.get("Records", []))
        request_id = str(getattr(context, "aws_request_id", ""))
        channel.send(InvocationStarted(channel.index, channel.pid, ids, request_id))
        return handler(event, context)

    return invoke


def _route_output(path: Path | None) -> None:
    """The function's stdout and stderr: appended to `path` (shared by every container), else the terminal.

    The file descriptors themselves are redirected, so everything the process writes lands there,
    line by line (O_APPEND keeps lines of different containers whole).
    """
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            os.dup2(log.fileno(), sys.stdout.fileno())
            os.dup2(log.fileno(), sys.stderr.fileno())
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
