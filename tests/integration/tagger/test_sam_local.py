"""`sam local invoke` and `sam local start-lambda` for real: SAM CLI, Docker, the built artifact in a container.

The invoke lines docs/deploying.md ("`sam local invoke`") documents, run as written, with `samconfig.toml`'s
local sections (Environment=local, events/env.json, host.docker.internal mapped to the host, the local
timeout), against `python -m local_stack services` (what `make local-services` runs). The only additions are
`--invoke-image`/`--skip-pull-image` (the stand-in base image `make sam-local-setup` builds,
tools/sam-local/README.md), the built template's path and an env file whose ports are the test's free ones.

The function runs on the host's architecture by default (`make build-host`, the built template's
architecture set to the host's), without emulation. `make sam-local-arm64` runs the same tests on
the template's arm64 build (`make build`) as deployed, under emulation on x86_64 (about 20 s per invoke).
Without Docker, SAM CLI or the stand-in image the tests skip and say which is missing.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from artifact.runtime import build_host, run_or_raise
from local_stack.services import LocalInvokeSetup
from tests.integration.harness import EVENTS, failures
from tests.integration.local_services import REPO_ROOT, free_port, start_local_services

SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"
SAMPLES = sorted(EVENTS.glob("sqs-*.json"))
REGION = "us-east-1"  # as the documented invoke lines give it
HOST_ARCH = "arm64" if platform.machine() in {"aarch64", "arm64"} else "x86_64"
ARCH = os.environ.get("SAM_LOCAL_ARCH", HOST_ARCH)
IMAGE = f"{os.environ.get('SAM_LOCAL_IMAGE', 'completion-tagger/lambda-python3.13')}:{ARCH}"
# Emulated, one invoke takes about 20 s: the build, five invokes and a start-lambda session fit in this.
TIMEOUT_SECONDS = 1200 if ARCH != HOST_ARCH else 600


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no Docker here (sam local runs the function in a container): `make sam-local-setup` on Debian"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "Docker is installed but its daemon is not running: `make sam-local-setup` starts it"
    if not SAM.exists():
        return "no SAM CLI in .venv-sam: `make .venv-sam/.installed`"
    inspect = ["docker", "image", "inspect", "--format", "{{.Architecture}}", IMAGE]
    found = subprocess.run(inspect, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return f"no base image {IMAGE} for sam local: `make sam-local-setup` builds it"
    return None


PROBLEM = _docker_problem()
pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_SECONDS)]
needs_docker = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")


def sam_environment() -> dict[str, str]:
    """This environment without an AWS profile or region, so nothing of the machine's AWS setup leaks in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return env | {"SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `sam local` runs: `make build` (arm64), or `make build-host` with the host's architecture."""
    if ARCH == "arm64":
        run_or_raise(["make", "--no-print-directory", "-C", str(REPO_ROOT), "build"], "make build", timeout=600)
        return REPO_ROOT / ".aws-sam" / "build" / "template.yaml"
    built = build_host(tmp_path_factory.mktemp("sam-build"))
    path = built.function.parent / "template.yaml"
    text = path.read_text(encoding="utf-8")
    host_text = re.sub(r"\barm64\b", ARCH, text)
    assert host_text != text, "the built template names no arm64 architecture to replace"
    path.write_text(host_text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class LocalServices:
    """`python -m local_stack services` on free ports of every interface, and the env file that points at it."""

    aws_port: int
    openai_port: int
    env_file: Path

    def sqs(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            region_name=REGION,
            aws_access_key_id="defaultkey",
            aws_secret_access_key="defaultsecret",
        )

    def result_events(self, expected: int) -> list[dict[str, Any]]:
        """Every result event copied to the observer queue: at least `expected`, then whatever else is there."""
        sqs = self.sqs()
        url = sqs.get_queue_url(QueueName=LocalInvokeSetup.from_events().names.observer_queue)["QueueUrl"]
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            wait = 0 if len(events) >= expected else 2
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            messages = received.get("Messages", [])
            if not messages and len(events) >= expected:
                break
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return events

    def metadata_of(self, completion_id: str) -> dict[str, str]:
        base_url = f"http://127.0.0.1:{self.openai_port}/v1"
        with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer local"}) as api:
            metadata: dict[str, str] = api.get(f"/chat/completions/{completion_id}").json()["metadata"]
        return metadata


@pytest.fixture
def services(tmp_path: Path) -> Iterator[LocalServices]:
    """On all interfaces, as `make local-services`: the container reaches it through host.docker.internal."""
    setup = LocalInvokeSetup.from_events()
    running = start_local_services("0.0.0.0")
    aws_port, openai_port, process = running.aws_port, running.openai_port, running.process
    # events/env.json as it is, but for the ports: the host stays host.docker.internal.
    env = (EVENTS / "env.json").read_text(encoding="utf-8")
    env = env.replace(f"host.docker.internal:{setup.aws_port}", f"host.docker.internal:{aws_port}")
    env = env.replace(f"host.docker.internal:{setup.openai_port}", f"host.docker.internal:{openai_port}")
    env_file = tmp_path / "env.json"
    env_file.write_text(env, encoding="utf-8")
    yield LocalServices(aws_port, openai_port, env_file)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def documented_invokes() -> list[list[str]]:
    """The `sam local invoke` lines of docs/deploying.md, as argument lists (comments dropped)."""
    page = (REPO_ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
    section = page.split("\n## `sam local invoke`", 1)[1].split("\n## ", 1)[0]
    prefix = ".venv-sam/bin/sam local invoke "
    return [shlex.split(line, comments=True) for line in section.splitlines() if line.startswith(prefix)]


def sam_local(command: str, template: Path, services: LocalServices, *options: str) -> list[str]:
    """`sam local COMMAND` with samconfig.toml's settings, the stand-in image and the test's env file."""
    return [str(SAM), "local", command, *options, *additions(template, services)]


def additions(template: Path, services: LocalServices) -> list[str]:
    """What the test adds to a documented line: the built template, the stand-in image, its env file."""
    return [
        "--template",
        str(template),
        "--config-file",
        str(REPO_ROOT / "samconfig.toml"),
        "--env-vars",
        str(services.env_file),
        "--invoke-image",
        IMAGE,
        "--skip-pull-image",
    ]


def outcome(event: dict[str, Any]) -> str:
    return "tagged" if event["detail-type"] == "CompletionTagged" else event["detail"]["error"]["code"]


def check_the_samples_results(services: LocalServices) -> None:
    """Four requests tag, the mixed sample's typo fails validation, its duplicate publishes nothing again."""
    events = services.result_events(expected=5)
    assert sorted(outcome(event) for event in events) == ["tagged"] * 4 + ["validation_error"]
    assert {event["source"] for event in events} == {"completion-tagger"}
    assert services.metadata_of("chatcmpl-demo-0002") == {"label": "golden", "split": "eval"}
    assert services.metadata_of("chatcmpl-demo-0004")["project"] == "demo"


def test_the_documented_invokes_cover_every_sample() -> None:
    lines = documented_invokes()
    samples = [line[line.index("-e") + 1] for line in lines]
    assert sorted(samples) == [str(sample.relative_to(REPO_ROOT)) for sample in SAMPLES]
    assert {tuple(line[: line.index("-e")]) for line in lines} == {
        (".venv-sam/bin/sam", "local", "invoke", "TaggerFunction", "--region", REGION)
    }


@needs_docker
def test_sam_local_invoke_puts_nothing_back_for_every_sample(template: Path, services: LocalServices) -> None:
    for line in documented_invokes():  # one container each
        command = [str(REPO_ROOT / line[0]), *line[1:], *additions(template, services)]
        done = run_or_raise(command, " ".join(line), cwd=REPO_ROOT, env=sam_environment())
        printed = done.stdout.strip().splitlines()  # the response; SAM CLI's and the function's logs: stderr
        assert printed, f"{' '.join(line)} answered nothing: {done.stderr[-3000:]}"
        assert failures(json.loads(printed[-1])) == set(), f"{' '.join(line)}: {done.stderr[-2000:]}"
    check_the_samples_results(services)


@needs_docker
def test_sam_local_start_lambda_answers_the_lambda_client(template: Path, services: LocalServices) -> None:
    port = free_port()
    command = sam_local("start-lambda", template, services, "--region", REGION, "--port", str(port))
    log = services.env_file.with_name("start-lambda.log")
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=sam_environment(), stdout=output, stderr=output)
        try:
            wait_for_port(port, process, log)
            client = boto3.client(
                "lambda",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name=REGION,
                aws_access_key_id="defaultkey",
                aws_secret_access_key="defaultsecret",
                config=Config(read_timeout=TIMEOUT_SECONDS, retries={"max_attempts": 1}),
            )
            for sample in SAMPLES:
                answer = client.invoke(FunctionName="TaggerFunction", Payload=sample.read_bytes())
                assert answer["StatusCode"] == 200
                assert "FunctionError" not in answer, log.read_text()[-2000:]
                assert failures(json.loads(answer["Payload"].read())) == set(), sample.name
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    check_the_samples_results(services)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sam local start-lambda exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"sam local start-lambda did not listen on {port}:\n{log.read_text()[-3000:]}")
