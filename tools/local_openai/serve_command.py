"""The local OpenAI server's command: `python -m local_openai`, `completion-tagger local-openai`.

It serves in the foreground until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from local_openai.foreground import wait_for_stop_signal
from local_openai.server import LocalOpenAIServer


def load_seed_completions(path: Path) -> list[dict[str, Any]]:
    """A JSON list of completion specs, or an object with such a list under ``completions``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "completions" in data:
        data = data["completions"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("expected a JSON list of objects")
    return data


@click.command(
    "local-openai",
    short_help="the local OpenAI-compatible server in the foreground (`make local-openai`)",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, default=8010, help="port to bind; 0 picks a free one (default 8010)")
@click.option("--api-key", help="accept only this bearer token (default: any non-empty token)")
@click.option("--latency", type=float, default=0.0, help="seconds added to every /v1 request")
@click.option("--latency-jitter", type=float, default=0.0, help="plus uniform random 0..S seconds")
@click.option("--error-rate", type=float, default=0.0, help="fraction 0..1 of /v1 requests answered 500")
@click.option("--burst-429-every", type=int, default=0, metavar="N", help="429 burst cycle length")
@click.option("--burst-429-length", type=int, default=0, metavar="M", help="the last M of every N get 429")
@click.option("--retry-after", type=float, default=1.0, help="Retry-After seconds on burst 429s")
@click.option("--seed", type=int, help="seed of the random faults, for reproducible runs")
@click.option(
    "--seed-completions",
    type=click.Path(path_type=Path),
    metavar="FILE.json",
    help='completions to store at start: a JSON list of {"id", "metadata", "model", "messages", "created"}',
)
@click.option("--verbose", is_flag=True, help="log every request (never its headers)")
def serve(
    host: str,
    port: int,
    api_key: str | None,
    latency: float,
    latency_jitter: float,
    error_rate: float,
    burst_429_every: int,
    burst_429_length: int,
    retry_after: float,
    seed: int | None,
    seed_completions: Path | None,
    verbose: bool,
) -> None:
    """Local OpenAI-compatible server of stored chat completions, with fault injection."""
    try:
        seeds = load_seed_completions(seed_completions) if seed_completions else []
        server = LocalOpenAIServer(
            host,
            port,
            api_key=api_key,
            latency=latency,
            latency_jitter=latency_jitter,
            error_rate=error_rate,
            seed=seed,
            burst_429_every=burst_429_every,
            burst_429_length=burst_429_length,
            retry_after=retry_after,
            seed_completions=seeds,
            verbose=verbose,
        )
        server.start()
    except (OSError, ValueError) as error:
        raise click.UsageError(str(error)) from None

    wait_for_stop_signal(
        lambda: print(f"local_openai serving {server.base_url} (admin {server.admin_url})", flush=True)
    )
    server.stop()
    print("local_openai stopped", file=sys.stderr, flush=True)
