"""A fleet of Lambda-like containers polling one queue, the way Lambda runs concurrent invocations.

Lambda runs up to the event source's maximum concurrency invocations at once, each in a container of
its own. `ContainerFleet(spec, count)` starts `count` containers (local_stack.container), each a
separate process made with multiprocessing's *spawn* (a fresh interpreter: its own cold start, its own
clients), and follows them from the parent through the reports they send:

    with ContainerFleet(spec, 3) as fleet:
        ...send messages...
        fleet.wait_until_drained(timeout_seconds=60)
        fleet.deleted_message_ids, fleet.stats(), fleet.drain()

`busy()` says which container is invoking which messages right now; `kill(index)` SIGKILLs one (its
batch is neither deleted nor reported: the messages come back after their visibility timeout) and
`start_container()` / `replace(index)` start another. Leaving the block stops every container (each
finishes its invocation in progress), terminating and then killing any that do not stop in time, so
no process outlives the fleet.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import boto3

from local_stack.container import (
    ContainerExited,
    ContainerFailed,
    ContainerReady,
    ContainerSpec,
    ExitCause,
    InvocationEnded,
    InvocationStarted,
    PollerError,
    Report,
    container_main,
)
from local_stack.event_source import EventSourceStats
from local_stack.function_env import FunctionSettings, function_environment
from local_stack.provision import StackResources
from local_stack.queue_peek import messages_on_queue, peek_message_ids

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SPAWN = multiprocessing.get_context("spawn")
DEFAULT_STARTUP_TIMEOUT_SECONDS = 60.0  # a cold start is ~1 s; generous for a loaded shared machine
DEFAULT_STOP_GRACE_SECONDS = 10.0
TERMINATE_GRACE_SECONDS = 2.0
_READ_TICK_SECONDS = 0.05
_EXIT_NOTICE_SECONDS = 5.0  # how long to wait for the reports a stopped or killed container sent before it went

State = Literal["starting", "ready"] | ExitCause
_GONE: frozenset[State] = frozenset({"failed", "stopped", "killed", "died"})


class ContainerStartError(RuntimeError):
    """A container could not start: its handler failed to import, it died, or it never became ready.

    `traceback` is the container's own, when it sent one (for the function log, not the terminal).
    """

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback


@dataclass(frozen=True)
class ContainerStats:
    """One container: its process, state, cold start and what its event source mapping did."""

    index: int
    pid: int
    state: State
    init_seconds: float | None
    counters: EventSourceStats


@dataclass(frozen=True)
class FleetStats:
    """Every container ever started by the fleet, replaced ones included, in start order."""

    containers: tuple[ContainerStats, ...]

    @property
    def totals(self) -> EventSourceStats:
        total = EventSourceStats()
        for container in self.containers:
            c = container.counters
            total = EventSourceStats(
                invocations=total.invocations + c.invocations,
                records_delivered=total.records_delivered + c.records_delivered,
                records_deleted=total.records_deleted + c.records_deleted,
                records_put_back=total.records_put_back + c.records_put_back,
                failed_invocations=total.failed_invocations + c.failed_invocations,
                delete_errors=total.delete_errors + c.delete_errors,
            )
        return total


def aws_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The AWS variables of `environ` (endpoint, region, credentials, config files) a container inherits."""
    return {name: value for name, value in environ.items() if name.startswith("AWS_")}


def container_spec(
    resources: StackResources,
    settings: FunctionSettings,
    *,
    batch_size: int = 10,
    batching_window_seconds: float = 0.0,
    function_timeout_seconds: float = 30.0,
    function_log: Path | None = None,
    extra_environment: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """The spec for containers of the function on a provisioned stack.

    Environment: the AWS variables of `environ` (default: this process', e.g. AWS_ENDPOINT_URL at
    moto), the function's variables from `settings`, then `extra_environment` (e.g.
    OPENAI_TIMEOUT_SECONDS) over both.
    """
    environment = aws_variables(os.environ if environ is None else environ)
    environment.update(function_environment(settings))
    environment.update(extra_environment or {})
    return ContainerSpec(
        queue_url=resources.queue_url,
        queue_arn=resources.queue_arn,
        environment=environment,
        batch_size=batch_size,
        batching_window_seconds=batching_window_seconds,
        function_timeout_seconds=function_timeout_seconds,
        function_log=function_log,
        dead_letter_queue_url=resources.dead_letter_queue_url,
    )


@dataclass
class _Container:
    """The parent's view of one container process; mutated only under the fleet's lock."""

    index: int
    process: BaseProcess
    connection: Connection
    stop: Event
    overrides: dict[str, str]
    state: State = "starting"
    init_seconds: float | None = None
    error: str | None = None
    error_traceback: str | None = None
    busy: tuple[str, ...] = ()
    counters: EventSourceStats = field(default_factory=EventSourceStats)
    killed: bool = False
    abandoned: tuple[str, ...] = ()
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class ContainerFleet:
    """`count` Lambda-like containers polling `spec`'s queue; use as a context manager.

    `environment_overrides` maps a container index to variables set in that container only (e.g. a
    shorter timeout for one). Reports are read by a background thread, so `busy()`, `stats()` and
    `deleted_message_ids` are always current; `drain()` returns the reports not yet drained.
    """

    def __init__(
        self,
        spec: ContainerSpec,
        count: int,
        *,
        environment_overrides: Mapping[int, Mapping[str, str]] | None = None,
        startup_timeout_seconds: float = DEFAULT_STARTUP_TIMEOUT_SECONDS,
        stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
    ) -> None:
        if count < 1:
            raise ValueError(f"a fleet needs at least one container, not {count}")
        self.spec = spec
        self._count = count
        self._overrides = {index: dict(values) for index, values in (environment_overrides or {}).items()}
        self._startup_timeout = startup_timeout_seconds
        self._stop_grace = stop_grace_seconds
        self._changed = threading.Condition()
        self._containers: dict[int, _Container] = {}
        self._reports: list[Report] = []
        self._deletions: Counter[str] = Counter()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="container-fleet-reports", daemon=True)
        self._sqs: SQSClient | None = None

    # ----- lifecycle -----

    def __enter__(self) -> ContainerFleet:
        return self if self._containers else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ContainerFleet:
        """Start the containers and wait until every one is ready; `ContainerStartError` if one is not
        (the others are then stopped)."""
        if self._containers:
            raise RuntimeError("the fleet is already started")
        indices = [self._spawn(self._overrides.get(index, {})) for index in range(self._count)]
        try:
            self._await_ready(indices, self._startup_timeout)
        except BaseException:
            self.stop(grace_seconds=0)
            raise
        return self

    def start_container(self, environment_overrides: Mapping[str, str] | None = None, *, wait: bool = True) -> int:
        """Start one more container (a new index); with `wait`, return once it is ready."""
        index = self._spawn(dict(environment_overrides or {}))
        if wait:
            self._await_ready([index], self._startup_timeout)
        return index

    def replace(self, index: int) -> int:
        """Kill container `index` if it still runs and start a new one with its overrides; the new index."""
        with self._changed:
            overrides = dict(self._containers[index].overrides)
        self.kill(index)
        return self.start_container(overrides)

    def kill(self, index: int) -> tuple[str, ...]:
        """SIGKILL container `index`, as a crash: its batch in progress is neither deleted nor reported.

        Returns the message ids it was invoking (they come back after their visibility timeout).
        """
        with self._changed:
            container = self._containers[index]
            if container.state in _GONE:
                return ()
            container.killed = True
        container.process.kill()
        container.process.join(TERMINATE_GRACE_SECONDS)
        container.exited.wait(_EXIT_NOTICE_SECONDS)
        with self._changed:
            return container.abandoned

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop every container: each finishes its invocation in progress within `grace_seconds`, then
        is terminated, then killed. Never leaves a process behind; safe to call twice."""
        grace = self._stop_grace if grace_seconds is None else grace_seconds
        with self._changed:
            containers = list(self._containers.values())
        for container in containers:
            container.stop.set()
        deadline = time.monotonic() + grace
        for container in containers:
            container.process.join(max(0.0, deadline - time.monotonic()))
        for container in containers:
            if container.process.is_alive():
                container.process.terminate()
        for container in containers:
            container.process.join(TERMINATE_GRACE_SECONDS)
            if container.process.is_alive():
                container.process.kill()
                container.process.join()
        for container in containers:
            container.exited.wait(_EXIT_NOTICE_SECONDS)
        self._closing.set()
        if self._reader.is_alive():
            self._reader.join()
        for container in containers:
            container.connection.close()

    # ----- what happened -----

    def drain(self) -> list[Report]:
        """Reports received since the last `drain()`, in arrival order."""
        with self._changed:
            reports, self._reports = self._reports, []
            return reports

    def busy(self) -> dict[int, tuple[str, ...]]:
        """Container index → the message ids it is invoking right now (idle containers left out)."""
        with self._changed:
            return {index: c.busy for index, c in self._containers.items() if c.busy}

    def pids(self) -> dict[int, int]:
        """Container index → process id, for the containers still running."""
        with self._changed:
            return {index: c.pid for index, c in self._containers.items() if c.state not in _GONE}

    def stats(self) -> FleetStats:
        with self._changed:
            return FleetStats(
                tuple(
                    ContainerStats(c.index, c.pid, c.state, c.init_seconds, c.counters)
                    for c in self._containers.values()
                )
            )

    @property
    def deleted_message_ids(self) -> frozenset[str]:
        """Every message some container deleted (it ended without going to the dead-letter queue)."""
        with self._changed:
            return frozenset(self._deletions)

    def deleted_more_than_once(self) -> dict[str, int]:
        """Messages deleted by more than one invocation (each delivered again while still being handled)."""
        with self._changed:
            return {message_id: count for message_id, count in self._deletions.items() if count > 1}

    def dead_lettered_ids(self) -> set[str]:
        """Ids of the messages on the dead-letter queue (read without consuming them)."""
        if self.spec.dead_letter_queue_url is None:
            raise ValueError("the spec names no dead-letter queue")
        return peek_message_ids(self._client(), self.spec.dead_letter_queue_url)

    # ----- waiting -----

    def wait_for(self, predicate: Callable[[], bool], timeout_seconds: float, poll_seconds: float = 0.1) -> bool:
        """Wait until `predicate()` (checked after every report and every `poll_seconds`) or the timeout."""
        deadline = time.monotonic() + timeout_seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(poll_seconds, remaining))
        return True

    def wait_for_report(self, timeout_seconds: float) -> bool:
        """Wait until there is a report `drain()` has not returned yet."""

        def pending() -> bool:
            with self._changed:
                return bool(self._reports)

        return self.wait_for(pending, timeout_seconds)

    def wait_for_deleted(self, message_ids: Iterable[str], timeout_seconds: float) -> bool:
        """Wait until every one of `message_ids` has been deleted by some container."""
        wanted = frozenset(message_ids)
        return self.wait_for(lambda: wanted <= self.deleted_message_ids, timeout_seconds)

    def wait_for_ended(self, message_ids: Iterable[str], timeout_seconds: float) -> bool:
        """Wait until every one of `message_ids` has ended: deleted by some container, or dead-lettered."""
        wanted = frozenset(message_ids)

        def ended() -> bool:
            left = wanted - self.deleted_message_ids
            return not left or left <= self.dead_lettered_ids()

        return self.wait_for(ended, timeout_seconds, poll_seconds=0.25)

    def wait_until_drained(self, timeout_seconds: float) -> bool:
        """Wait until the queue holds nothing (visible, in flight or delayed) and no container is invoking."""
        sqs = self._client()
        return self.wait_for(
            lambda: not self.busy() and messages_on_queue(sqs, self.spec.queue_url) == 0,
            timeout_seconds,
            poll_seconds=0.25,
        )

    # ----- internals -----

    def _client(self) -> SQSClient:
        if self._sqs is None:
            self._sqs = boto3.client("sqs")
        return self._sqs

    def _spawn(self, overrides: dict[str, str]) -> int:
        if self._closing.is_set():
            raise RuntimeError("the fleet has been stopped")
        if not self._reader.is_alive():
            self._reader.start()
        receiver, sender = SPAWN.Pipe(duplex=False)
        stop = SPAWN.Event()
        with self._changed:
            index = len(self._containers)
            process = SPAWN.Process(
                target=container_main,
                args=(index, self.spec, {**self.spec.environment, **overrides}, sender, stop),
                name=f"completion-tagger-container-{index}",
                daemon=True,  # multiprocessing ends it if the parent exits without stopping the fleet
            )
            process.start()
            self._containers[index] = _Container(index, process, receiver, stop, overrides)
            self._changed.notify_all()
        sender.close()  # the child holds the only write end now, so its death is an EOF here
        return index

    def _await_ready(self, indices: list[int], timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while True:
                waiting = [self._containers[index] for index in indices if self._containers[index].state != "ready"]
                if not waiting:
                    return
                for container in waiting:
                    if container.state in _GONE:
                        reason = container.error or f"exited with code {container.process.exitcode} before it was ready"
                        raise ContainerStartError(
                            f"container {container.index} (pid {container.pid}): {reason}", container.error_traceback
                        )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    late = ", ".join(str(container.index) for container in waiting)
                    raise ContainerStartError(f"container(s) {late} not ready after {timeout_seconds:g} s")
                self._changed.wait(remaining)

    def _read(self) -> None:
        """The reader thread: applies every container's reports as they arrive; notices exits (EOF)."""
        while not self._closing.is_set():
            with self._changed:
                open_ = {c.connection: c for c in self._containers.values() if not c.exited.is_set()}
            if not open_:
                self._closing.wait(_READ_TICK_SECONDS)
                continue
            for ready in wait(list(open_), timeout=_READ_TICK_SECONDS):
                connection = cast(Connection, ready)
                container = open_[connection]
                try:
                    report = connection.recv()
                except (EOFError, OSError):
                    self._exited(container)
                else:
                    self._apply(container, report)

    def _apply(self, container: _Container, report: Report) -> None:
        with self._changed:
            if isinstance(report, ContainerReady):
                container.state = "ready"
                container.init_seconds = report.init_seconds
            elif isinstance(report, ContainerFailed):
                container.state = "failed"
                container.error = report.error
                container.error_traceback = report.traceback
            elif isinstance(report, InvocationStarted):
                container.busy = report.message_ids
            elif isinstance(report, InvocationEnded):
                container.busy = ()
                container.counters = _count(container.counters, report)
                self._deletions.update(report.report.deleted)
            elif isinstance(report, PollerError):
                container.busy = ()
            self._reports.append(report)
            self._changed.notify_all()

    def _exited(self, container: _Container) -> None:
        """EOF on a container's pipe: its process has ended (or is ending); record how, once."""
        wait([container.process.sentinel], timeout=TERMINATE_GRACE_SECONDS)
        exitcode = _exitcode(container.process)
        with self._changed:
            cause: ExitCause = "failed"
            if container.state != "failed":
                cause = "killed" if container.killed else "stopped" if container.stop.is_set() else "died"
            container.state = cause
            container.abandoned, container.busy = container.busy, ()
            self._reports.append(ContainerExited(container.index, container.pid, exitcode, cause, container.abandoned))
            container.exited.set()
            self._changed.notify_all()


def _exitcode(process: BaseProcess) -> int | None:
    """The exit code of an ended process; the main thread may be reaping it at this very moment."""
    deadline = time.monotonic() + TERMINATE_GRACE_SECONDS
    while process.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.exitcode


def _count(counters: EventSourceStats, ended: InvocationEnded) -> EventSourceStats:
    report = ended.report
    not_deleted = len(report.message_ids) - len(report.deleted) - len(report.put_back)
    return replace(
        counters,
        invocations=counters.invocations + 1,
        records_delivered=counters.records_delivered + len(report.message_ids),
        records_deleted=counters.records_deleted + len(report.deleted),
        records_put_back=counters.records_put_back + len(report.put_back),
        failed_invocations=counters.failed_invocations + int(report.error is not None),
        delete_errors=counters.delete_errors + max(0, not_deleted),
    )
