"""`python -m local_stack services` (what `make local-services` runs) as a subprocess on free ports, for the
tests that point a Lambda-like runtime at it: the built artifact and `sam local`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "local services ready"
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServices:
    aws_port: int
    openai_port: int
    process: subprocess.Popen[str]
    banner: str  # what the services printed up to their ready line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_local_services(host: str) -> RunningServices:
    """Start the services on `host` and wait for their ready line; fails the test if they do not start."""
    aws_port, openai_port = free_port(), free_port()
    command = [sys.executable, "-m", "local_stack", "services", "--host", host]
    process = subprocess.Popen(
        [*command, "--aws-port", str(aws_port), "--openai-port", str(openai_port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and (line := process.stdout.readline()):
        output.append(line)
        if READY_LINE in line:
            return RunningServices(aws_port, openai_port, process, "".join(output))
    process.kill()
    pytest.fail("local services did not start:\n" + "".join(output))
