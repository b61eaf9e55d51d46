"""`make local-services`: what `sam local invoke` needs around the function, in the foreground.

`events/env.json` points a `sam local` container at moto (port 5000) and the local OpenAI server (port
8010) on the host, and names an idempotency table and an event bus; the `events/` samples name a queue in
their `eventSourceARN`. This starts both servers on all interfaces (a container cannot reach a server
bound to 127.0.0.1), creates those resources on moto, stores the seed completions the samples tag, and
serves until Ctrl-C (SIGINT) or SIGTERM. Result events are copied to an observer queue, as in `make run`.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from local_openai.foreground import wait_for_stop_signal
from local_openai.serve_command import load_seed_completions
from local_openai.server import LocalOpenAIServer
from local_stack.account import REGION
from local_stack.aws_endpoint import LOOPBACK, MotoEndpoint, apply_environment, aws_environment
from local_stack.provision import StackNames, StackSettings, provision

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a sam local container reaches the host, not its loopback


@dataclass(frozen=True)
class LocalInvokeSetup:
    """What events/env.json and the samples expect: ports, resource names, samples and seed completions."""

    aws_port: int
    openai_port: int
    names: StackNames
    samples: tuple[Path, ...]
    seed_file: Path

    @classmethod
    def from_events(cls, events_dir: Path = EVENTS_DIR) -> LocalInvokeSetup:
        env = json.loads((events_dir / "env.json").read_text(encoding="utf-8"))["TaggerFunction"]
        samples = tuple(sorted(events_dir.glob("sqs-*.json")))
        first_record = json.loads(samples[0].read_text(encoding="utf-8"))["Records"][0]
        queue = first_record["eventSourceARN"].rsplit(":", 1)[1]
        prefix = env["EVENT_BUS_NAME"]
        names = StackNames(
            queue=queue,
            dead_letter_queue=f"{queue}-dlq",
            observer_queue=f"{prefix}-results-observer",
            table=env["IDEMPOTENCY_TABLE_NAME"],
            event_bus=env["EVENT_BUS_NAME"],
            upstream_rule=f"{prefix}-upstream-tag-requests",
            observer_rule=f"{prefix}-results-observer",
        )
        return cls(
            aws_port=_port(env["AWS_ENDPOINT_URL"]),
            openai_port=_port(env["OPENAI_BASE_URL"]),
            names=names,
            samples=samples,
            seed_file=events_dir / "local-openai-seed.json",
        )


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"events/env.json: {url} names no port")
    return port


@click.command(
    "services",
    short_help="moto and the local OpenAI server where events/env.json points `sam local invoke`",
    help="`make local-services`: what `sam local invoke` needs around the function, in the foreground.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--host", default=ALL_INTERFACES, help=f"address to bind (default {ALL_INTERFACES})")
@click.option(
    "--aws-port",
    type=int,
    default=lambda: LocalInvokeSetup.from_events().aws_port,
    help="moto's port (default: as events/env.json)",
)
@click.option(
    "--openai-port",
    type=int,
    default=lambda: LocalInvokeSetup.from_events().openai_port,
    help="the local OpenAI server's port (default: as events/env.json)",
)
@click.pass_context
def services(context: click.Context, host: str, aws_port: int, openai_port: int) -> None:
    context.exit(serve_local_services(host, aws_port, openai_port))


def serve_local_services(host: str, aws_port: int, openai_port: int) -> int:
    """Serve until Ctrl-C or SIGTERM; the exit code (2: a port is taken)."""
    setup = LocalInvokeSetup.from_events()
    for port in (aws_port, openai_port):
        if problem := port_unavailable(host, port):
            print(f"local_stack services: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
            return 2
    seeds = load_seed_completions(setup.seed_file)
    with (
        MotoEndpoint(host, aws_port) as moto,
        LocalOpenAIServer(host, openai_port, seed_completions=seeds) as api,
    ):
        bound_aws_port = urlsplit(moto.url).port
        apply_environment(aws_environment(f"http://{LOOPBACK}:{bound_aws_port}"))
        resources = provision(setup.names, StackSettings())
        wait_for_stop_signal(
            lambda: _print_ready(setup, host, bound_aws_port, api.port, resources.observer_queue_url, len(seeds))
        )
    print("local services stopped", flush=True)
    return 0


def port_unavailable(host: str, port: int) -> str | None:
    """Why a server could not listen there, or None. moto's threaded server would wait for ever instead."""
    if port == 0:
        return None
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is fine
            probe.bind((host, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


def _print_ready(
    setup: LocalInvokeSetup, host: str, aws_port: int | None, openai_port: int, observer_url: str, seeded: int
) -> None:
    names = setup.names
    lines = [
        f"AWS (moto)        http://{host}:{aws_port}  region {REGION}",
        f"  table {names.table}, bus {names.event_bus}, queue {names.queue} (dead letters: {names.dead_letter_queue})",
        f"  result events are copied to a queue: aws --endpoint-url http://localhost:{aws_port} --region {REGION} "
        f"sqs receive-message --queue-url {observer_url} --max-number-of-messages 10",
        f"OpenAI (local)    http://{host}:{openai_port}/v1  {seeded} stored completions from {setup.seed_file.name}",
    ]
    if (aws_port, openai_port) != (setup.aws_port, setup.openai_port):
        lines.append("note: not the ports events/env.json names; give sam local an env file that matches")
    lines += ["", "After `make build`, in another shell:"]
    lines += [
        f"  .venv-sam/bin/sam local invoke TaggerFunction --region {REGION} -e events/{sample.name}"
        for sample in setup.samples
    ]
    lines += ["", "local services ready; Ctrl-C stops them"]
    print("\n".join(lines), flush=True)
