"""`python -m local_stack up` (`make local-stack`): the local stack, kept up until Ctrl-C.

moto (AWS) and the local OpenAI server on fixed loopback ports, the stack provisioned as `make run`
provisions it, the sample completions stored, and `--concurrency` Lambda-like containers polling the queue.
It prints how to point `completion-tagger send` (and `send --wait`) at it, then serves: send files, watch
them end, read the results, as against a deployed stack (docs/sending.md, "A backfill, end to end").
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from local_openai.foreground import wait_for_stop_signal
from local_openai.server import LocalOpenAIServer
from local_stack.account import REGION
from local_stack.aws_endpoint import LOOPBACK, MotoEndpoint, apply_environment, aws_environment
from local_stack.fleet import ContainerFleet, ContainerStartError, container_spec
from local_stack.function_env import FunctionSettings
from local_stack.openai_backend import LOCAL_API_KEY
from local_stack.provision import EVENT_SOURCE, StackNames, StackResources, StackSettings, provision
from local_stack.samples import load_samples
from local_stack.services import port_unavailable

DEFAULT_AWS_PORT = 5050
DEFAULT_OPENAI_PORT = 8050
DEFAULT_CONTAINERS = 2
VISIBILITY_TIMEOUT_SECONDS = 36  # 6 × the containers' 6 s function timeout, as the template keeps it
FUNCTION_TIMEOUT_SECONDS = 6.0


@click.command(
    "up",
    short_help="the local stack (moto, local OpenAI server, containers polling the queue) until Ctrl-C",
    help="`python -m local_stack up` (`make local-stack`): the local stack, kept up until Ctrl-C.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--aws-port", type=int, default=DEFAULT_AWS_PORT, help=f"moto's port ({DEFAULT_AWS_PORT})")
@click.option(
    "--openai-port", type=int, default=DEFAULT_OPENAI_PORT, help=f"the local OpenAI server's ({DEFAULT_OPENAI_PORT})"
)
@click.option("--concurrency", type=int, default=DEFAULT_CONTAINERS, help=f"containers (default {DEFAULT_CONTAINERS})")
@click.option(
    "--api-requests-per-second",
    type=float,
    default=0.0,
    help="the fleet-wide cap on API requests (API_REQUESTS_PER_SECOND; default 0: none)",
)
@click.option("--function-log", type=click.Path(path_type=Path), help="write the function's log lines here")
@click.pass_context
def up(
    context: click.Context,
    aws_port: int,
    openai_port: int,
    concurrency: int,
    api_requests_per_second: float,
    function_log: Path | None,
) -> None:
    context.exit(stay_up(aws_port, openai_port, concurrency, api_requests_per_second, function_log))


def stay_up(
    aws_port: int, openai_port: int, concurrency: int, api_requests_per_second: float, function_log: Path | None
) -> int:
    """Serve until Ctrl-C or SIGTERM; the exit code (2: a port is taken or a container did not start)."""
    for port in (aws_port, openai_port):
        if problem := port_unavailable(LOOPBACK, port):
            print(f"local_stack up: cannot listen on {LOOPBACK}:{port}: {problem}", file=sys.stderr)
            return 2
    samples = load_samples()
    seeds = [{"id": cid, "metadata": metadata} for cid, metadata in samples.completions.items()]
    with (
        MotoEndpoint(LOOPBACK, aws_port) as moto,
        LocalOpenAIServer(LOOPBACK, openai_port, api_key=LOCAL_API_KEY, seed_completions=seeds) as api,
    ):
        aws_url = f"http://{LOOPBACK}:{urlsplit(moto.url).port}"
        apply_environment(aws_environment(aws_url))
        resources = provision(StackNames(), StackSettings(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS))
        settings = FunctionSettings(
            openai_base_url=api.base_url,
            openai_api_key=LOCAL_API_KEY,
            idempotency_table_name=resources.names.table,
            event_bus_name=resources.names.event_bus,
            event_source=EVENT_SOURCE,
            max_receive_count=StackSettings().max_receive_count,
            max_concurrency=10,
            retry_backoff_base_seconds=1,
            retry_backoff_max_seconds=4,
            openai_timeout_seconds=2.0,
            api_requests_per_second=api_requests_per_second,
        )
        spec = container_spec(
            resources,
            settings,
            function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
            function_log=function_log,
            extra_environment={"TIME_RESERVE_MILLIS": "500"},
        )
        try:
            with ContainerFleet(spec, concurrency):
                text = ready_text(aws_url, api.base_url, resources, concurrency, sorted(samples.completions))
                wait_for_stop_signal(lambda: print(text, flush=True))
        except ContainerStartError as error:
            print(f"local_stack up: a container did not start: {error}", file=sys.stderr)
            return 2
    print("local stack stopped", flush=True)
    return 0


def ready_text(
    aws_url: str, openai_url: str, resources: StackResources, containers: int, completion_ids: list[str]
) -> str:
    """Where everything is, and the commands that send to it and wait for the results."""
    names = resources.names
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in aws_environment(aws_url).items())
    stored = ", ".join(completion_ids[:3])
    return "\n".join(
        [
            f"AWS (moto)        {aws_url}  region {REGION}",
            f"  queue {resources.queue_url}",
            f"  dead letters {resources.dead_letter_queue_url}",
            f"  table {names.table}, result bus {names.event_bus}",
            f"OpenAI (local)    {openai_url}",
            f"containers        {containers}, polling the queue",
            "",
            "In another shell, point boto3 at moto:",
            f"  export {exports}",
            "then send a file and wait for its results:",
            "  .venv/bin/completion-tagger send requests.jsonl \\",
            f"    --queue-url {resources.queue_url} \\",
            f"    --wait --results-bus {names.event_bus} --idempotency-table {names.table} \\",
            f"    --dead-letter-queue-url {resources.dead_letter_queue_url} --results results.jsonl",
            *([f"  (stored completions to tag include {stored})"] if stored else []),
            "",
            "local stack ready; Ctrl-C stops it",
        ]
    )
