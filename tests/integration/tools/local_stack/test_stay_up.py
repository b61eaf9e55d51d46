"""`make local-stack` (`python -m local_stack up`): the local stack stays up, says how to send to it, and a
file sent with `completion-tagger send --wait` as it says ends tagged; Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local_stack.samples import load_samples

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_until_ready(process: subprocess.Popen[str], timeout_seconds: float = 120) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "local stack ready" in line:
            return lines
    raise AssertionError("the local stack did not become ready:\n" + "\n".join(lines))


def test_the_local_stack_serves_send_wait_until_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "local_stack", "up", "--aws-port", str(free_port())]
    command += ["--openai-port", str(free_port()), "--concurrency", "1"]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    try:
        printed = read_until_ready(up)
        [exports] = [line.strip().removeprefix("export ") for line in printed if line.strip().startswith("export ")]
        aws = dict(pair.split("=", 1) for pair in shlex.split(exports))
        start = next(number for number, line in enumerate(printed) if "completion-tagger send" in line)
        arguments = shlex.split(" ".join(line.strip().rstrip("\\") for line in printed[start : start + 4]))
        assert arguments[0].endswith("completion-tagger")

        completion = sorted(load_samples().completions)[0]
        requests = tmp_path / "requests.jsonl"
        requests.write_text(json.dumps({"completion_id": completion, "metadata": {"backfill": "up"}}) + "\n")
        results = tmp_path / "results.jsonl"
        arguments = [
            a.replace("requests.jsonl", str(requests)).replace("results.jsonl", str(results)) for a in arguments
        ]
        script = str(Path(sys.executable).with_name("completion-tagger"))
        sent = subprocess.run(
            [script, *arguments[1:], "--timeout", "60"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**environment, **aws},
            check=False,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert [json.loads(line)["outcome"] for line in results.read_text().splitlines()] == ["tagged"]
    finally:
        up.send_signal(signal.SIGINT)
        try:
            output, _ = up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert up.returncode == 0, output
    assert "local stack stopped" in output
