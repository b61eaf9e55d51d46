"""Runs inside a fresh interpreter laid out like the Lambda runtime: only the built artifact is importable.

Started by `artifact.runtime` as `python3.13 -I -S probe.py ...`: no site-packages, no current directory,
no PYTHON* variables. It puts the built function, the built layer and the runtime's boto3/botocore on
`sys.path` (in Lambda's order: /var/task, /opt/python, /var/runtime), then either

- `init ours` or `init bare`: times the handler module's import (imports plus client creation), or the
  yardstick (`import boto3, httpx, pydantic` and two boto3 clients); or
- `invoke EVENT.json ...`: imports the handler named like the template's `Handler` and calls it with each
  event, as the runtime would.

It writes one JSON document to `--output`: timings, responses, and where every loaded module came from
(which part of the artifact, the standard library, or elsewhere), plus every file that had to be compiled
from source while loading (an audit hook sees each `compile`). Standard library only, by necessity.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import sysconfig
import time
import uuid
from pathlib import Path
from typing import Any

ROOTS = ("function", "layer", "runtime")


class Context:
    """The attributes of the runtime's context object that the handler and Powertools read."""

    def __init__(self, timeout_seconds: float) -> None:
        self.function_name = "completion-tagger"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:completion-tagger"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/completion-tagger"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe")
    for root in ROOTS:
        parser.add_argument(f"--{root}", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--handler", default="tagger.app.lambda_handler")
    parser.add_argument("--timeout", type=float, default=30.0, help="the function timeout the context counts down")
    parser.add_argument("mode", choices=("init", "invoke"))
    parser.add_argument("targets", nargs="+", help="init: ours or bare; invoke: event files")
    return parser.parse_args(argv)


def peak_rss_kb() -> int:
    """VmHWM: Linux keeps `ru_maxrss` across `execve`, so it would report the bench's own peak."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bare_init() -> None:
    import boto3  # noqa: PLC0415 - the import is what is measured
    import httpx  # noqa: F401, PLC0415
    import pydantic  # noqa: F401, PLC0415

    boto3.client("dynamodb")
    boto3.client("events")


def origin_of(path: str, roots: dict[str, Path], stdlib: Path) -> str:
    """Which root holds a file (links are not followed: the runtime root links to this machine's boto3)."""
    absolute = Path(os.path.abspath(path))
    if absolute == Path(os.path.abspath(__file__)):
        return "probe"
    for name, root in roots.items():
        if absolute.is_relative_to(root):
            return name
    if absolute.is_relative_to(stdlib) and "site-packages" not in absolute.parts:
        return "stdlib"
    return "elsewhere"


def module_origins(roots: dict[str, Path], stdlib: Path) -> dict[str, Any]:
    """Counts of loaded modules by origin, the files of the function and layer ones, and any stray ones."""
    counts: dict[str, int] = {}
    files: dict[str, list[str]] = {"function": [], "layer": [], "elsewhere": []}
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        origin = origin_of(path, roots, stdlib) if path else "built-in"
        counts[origin] = counts.get(origin, 0) + 1
        if origin in files:
            files[origin].append(f"{name} {path}")
    return {"counts": counts, **{f"{origin}_files": listed for origin, listed in files.items()}}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    roots = {name: Path(os.path.abspath(getattr(args, name))) for name in ROOTS}
    sys.path[:0] = [str(roots[name]) for name in ROOTS]
    compiled: list[str] = []

    def audit(event: str, details: tuple[Any, ...]) -> None:
        if event == "compile" and len(details) > 1 and isinstance(details[1], str):
            compiled.append(details[1])

    sys.addaudithook(audit)
    result: dict[str, Any] = {"python": sys.version.split()[0], "sys_path": sys.path[:3]}
    modules_before = len(sys.modules)
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.mode == "init" and args.targets == ["bare"]:
        bare_init()
    else:
        module_name, _, function_name = args.handler.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
    result["init_seconds"] = time.perf_counter() - started
    result["init_cpu_seconds"] = time.process_time() - cpu_started  # steadier than wall time on a busy machine
    result["modules_imported"] = len(sys.modules) - modules_before
    result["rss_kb"] = peak_rss_kb()
    result["xray_sdk_loaded"] = "aws_xray_sdk" in sys.modules
    result["openai_sdk_loaded"] = "openai" in sys.modules
    if args.mode == "invoke":
        result["responses"] = {}
        for event_file in args.targets:
            event = json.loads(Path(event_file).read_text(encoding="utf-8"))
            result["responses"][event_file] = handler(event, Context(args.timeout))
    stdlib = Path(os.path.abspath(sysconfig.get_paths()["stdlib"]))
    result["origins"] = module_origins(roots, stdlib)
    result["compiled_from_source"] = sorted(
        {path for path in compiled if Path(path).is_file() and origin_of(path, roots, stdlib) in ROOTS}
    )
    args.output.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
