"""Faults in the AWS calls a container makes after its API write: the crash points of a request.

A container started with `LOCAL_STACK_HANDLER_WRAPPER=tests.integration.aws_faults:install` and
`AWS_FAULT_PLAN=<file>` (see `fault_environment`) watches its own traffic:

- the local OpenAI server accepting a `POST /chat/completions/{id}` (a write that landed) arms the point
  planned for that completion, once per plan, whichever container handles it (the plan is read at each
  write, so a test can add points while its containers run);
- from then on, until the invocation ends, the container's DynamoDB and EventBridge calls are counted
  (0 is the first call after the write). From call `after_write_call` on, `fail` answers every one with
  a server error (botocore's `before-call` hook short-circuits the call, so no retry reaches AWS);
  `kill` SIGKILLs the container just before that call goes out.

Each invocation that armed a point appends a line to the plan's journal (`fired`, and how many calls it
made after the write), so a test can tell that its sweep passed the last call. The product knows
nothing of this: the hooks are botocore's and httpx's, installed here before the handler is imported.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import botocore.session
import httpx
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

Handler = Callable[[dict[str, Any], Any], Any]
Action = Literal["fail", "kill"]

PLAN_VARIABLE = "AWS_FAULT_PLAN"
WRAPPER = "tests.integration.aws_faults:install"
FAULTED_SERVICES = frozenset({"dynamodb", "events"})
_WRITE = re.compile(r"/chat/completions/(?P<completion_id>[A-Za-z0-9_-]+)$")
_ERROR_CODES = {"dynamodb": "InternalServerError", "events": "InternalException"}


@dataclass(frozen=True)
class CrashPoint:
    """Fault the `after_write_call`-th AWS call (0-based) after `completion_id`'s API write, and every later one."""

    completion_id: str
    after_write_call: int
    action: Action


@dataclass(frozen=True)
class JournalEntry:
    completion_id: str
    pid: int
    fired: bool
    calls_after_write: int


def write_plan(path: Path, points: Iterable[CrashPoint]) -> None:
    path.write_text(json.dumps([asdict(point) for point in points]))


def fault_environment(plan: Path) -> dict[str, str]:
    """The variables that make a container follow `plan` (see the module docstring)."""
    return {"LOCAL_STACK_HANDLER_WRAPPER": WRAPPER, PLAN_VARIABLE: str(plan)}


def read_journal(plan: Path) -> list[JournalEntry]:
    path = _journal(plan)
    if not path.exists():
        return []
    return [JournalEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _journal(plan: Path) -> Path:
    return plan.with_suffix(".journal")


class _Armed:
    """The point armed by this invocation's write, and the calls made since."""

    def __init__(self, point: CrashPoint) -> None:
        self.point = point
        self.calls = 0
        self.fired = False


class _FaultState:
    def __init__(self, plan: Path) -> None:
        self._plan = plan
        self._lock = threading.Lock()
        self._armed: _Armed | None = None

    def write_accepted(self, completion_id: str) -> None:
        with self._lock:
            point = self._points().get(completion_id)
            if point is None or self._armed is not None or self._already_armed(completion_id):
                return
            self._armed = _Armed(point)
            self._record_armed(completion_id)

    def before_call(self, service: str) -> tuple[AWSResponse, dict[str, Any]] | None:
        with self._lock:
            armed = self._armed
            if armed is None or service not in FAULTED_SERVICES:
                return None
            position = armed.calls
            armed.calls += 1
            if position < armed.point.after_write_call:
                return None
            armed.fired = True
            if armed.point.action == "kill":
                self._log(armed)
                os.kill(os.getpid(), signal.SIGKILL)
        code = _ERROR_CODES[service]
        error = {"Code": code, "Message": f"injected after the API write (call {position})"}
        return AWSResponse(f"https://{service}.local", 500, HTTPHeaders(), None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    def invocation_ended(self) -> None:
        with self._lock:
            armed, self._armed = self._armed, None
            if armed is not None:
                self._log(armed)

    def _points(self) -> dict[str, CrashPoint]:
        """The plan as it is now (a test may add points while its containers run)."""
        points = (CrashPoint(**item) for item in json.loads(self._plan.read_text()))
        return {point.completion_id: point for point in points}

    def _already_armed(self, completion_id: str) -> bool:
        marker = self._plan.with_suffix(".armed")
        return marker.exists() and completion_id in marker.read_text().split()

    def _record_armed(self, completion_id: str) -> None:
        _append(self._plan.with_suffix(".armed"), completion_id)

    def _log(self, armed: _Armed) -> None:
        entry = JournalEntry(armed.point.completion_id, os.getpid(), armed.fired, armed.calls)
        _append(_journal(self._plan), json.dumps(asdict(entry)))


def _append(path: Path, line: str) -> None:
    """One whole line, durable before a SIGKILL can follow (O_APPEND keeps other processes' lines whole)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, (line + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def install(environ: Mapping[str, str] | None = None) -> Callable[[Handler], Handler]:
    """Hook every botocore client created from now on and the httpx client's sends; the handler wrapper."""
    state = _FaultState(Path((environ or os.environ)[PLAN_VARIABLE]))
    _hook_botocore(state)
    _hook_httpx(state)

    def wrap(handler: Handler) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                state.invocation_ended()

        return invoke

    return wrap


def _hook_botocore(state: _FaultState) -> None:
    create_client = botocore.session.Session.create_client

    def before_call(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        return state.before_call(model.service_model.service_name)

    def create_hooked_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        # A before-call handler that returns a response short-circuits the call (botocore's documented hook).
        client.meta.events.register("before-call", before_call)  # type: ignore[arg-type]
        return client

    botocore.session.Session.create_client = create_hooked_client  # type: ignore[method-assign]


def _hook_httpx(state: _FaultState) -> None:
    send = httpx.Client.send

    def send_and_watch(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        response = send(self, request, *args, **kwargs)
        match = _WRITE.search(request.url.path)
        if request.method == "POST" and match and response.status_code < 300:
            state.write_accepted(match["completion_id"])
        return response

    httpx.Client.send = send_and_watch  # type: ignore[method-assign]
