"""One warm function container: imports a handler once, then runs the batches the runner sends it.

Protocol: one JSON object per line. Commands arrive on stdin; replies leave on the file descriptor
that was stdout at start. The handler's own stdout (Powertools logs and EMF metrics) goes to /dev/null,
as it would go to CloudWatch Logs rather than compete with the bench's output.

AWS calls are counted with a botocore `before-call` hook on every client created in this process
(all of them belong to the function: the worker makes no AWS call of its own); retries inside one
call are not counted again. PutEvents entries are counted from the call's parameters.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections import Counter
from typing import IO, Any

from bench.client_hooks import on_every_new_client
from bench.functions import IMPLEMENTATIONS, Implementation, load_handler
from bench.rss import peak_rss_kb
from local_stack.lambda_context import LocalLambdaContext


class AwsCallCounter:
    """Counts API calls per `service:Operation`, and the entries of PutEvents calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.put_events_entries = 0

    def before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """`before-parameter-build` sees the API parameters (`before-call` only the serialized request)."""
        if model.name == "PutEvents" and model.service_model.service_name == "events":
            with self._lock:
                self.put_events_entries += len(params.get("Entries") or [])

    def take(self) -> dict[str, Any]:
        with self._lock:
            snapshot = {"calls": dict(self.calls), "put_events_entries": self.put_events_entries}
            self.calls.clear()
            self.put_events_entries = 0
        return snapshot

    def install(self) -> None:
        """Register the hooks on every botocore client created from now on (the function's, at its init)."""
        on_every_new_client(self._register)

    def _register(self, client: Any) -> None:
        client.meta.events.register("before-call", self.before_call)
        client.meta.events.register("before-parameter-build", self.before_parameter_build)


def serve(implementation: Implementation, replies: IO[str], commands: IO[str]) -> None:
    counter = AwsCallCounter()
    counter.install()
    started = time.perf_counter()
    handler = load_handler(implementation)
    _reply(replies, {"ready": True, "init_seconds": time.perf_counter() - started, "rss_kb": peak_rss_kb()})
    for line in commands:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        if command["op"] != "invoke":
            _reply(replies, {"error": f"unknown op {command['op']!r}"})
            continue
        counter.take()
        context = LocalLambdaContext(
            function_name=f"bench-{implementation}",
            timeout_seconds=float(command["timeout_seconds"]),
            memory_limit_in_mb=int(command["memory_mb"]),
        )
        try:
            cpu_started = time.process_time()
            started = time.perf_counter()
            response = handler(command["event"], context)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        except Exception:
            _reply(replies, {"error": traceback.format_exc(limit=8)})
            continue
        _reply(
            replies,
            {
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "response": response,
                "aws": counter.take(),
                "rss_kb": peak_rss_kb(),
            },
        )


def _reply(replies: IO[str], message: dict[str, Any]) -> None:
    replies.write(json.dumps(message) + "\n")
    replies.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in IMPLEMENTATIONS:
        print(f"usage: python -m bench.worker {{{','.join(IMPLEMENTATIONS)}}}", file=sys.stderr)
        return 2
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    implementation: Implementation = "ours" if argv[1] == "ours" else "baseline"
    serve(implementation, replies, sys.stdin)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
