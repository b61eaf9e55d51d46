"""``python -m local_openai``: run the local OpenAI server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_openai.foreground import wait_for_stop_signal
from local_openai.server import LocalOpenAIServer


def build_parser(prog: str = "python -m local_openai") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Local OpenAI-compatible server of stored chat completions, with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8010, help="port to bind; 0 picks a free one (default 8010)")
    parser.add_argument("--api-key", help="accept only this bearer token (default: any non-empty token)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every /v1 request")
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="plus uniform random 0..S seconds")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction 0..1 of /v1 requests answered 500")
    parser.add_argument("--burst-429-every", type=int, default=0, metavar="N", help="429 burst cycle length")
    parser.add_argument("--burst-429-length", type=int, default=0, metavar="M", help="the last M of every N get 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on burst 429s")
    parser.add_argument("--seed", type=int, help="seed of the random faults, for reproducible runs")
    parser.add_argument(
        "--seed-completions",
        type=Path,
        metavar="FILE.json",
        help='completions to store at start: a JSON list of {"id", "metadata", "model", "messages", "created"}',
    )
    parser.add_argument("--verbose", action="store_true", help="log every request (never its headers)")
    return parser


def load_seed_completions(path: Path) -> list[dict[str, Any]]:
    """A JSON list of completion specs, or an object with such a list under ``completions``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "completions" in data:
        data = data["completions"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("expected a JSON list of objects")
    return data


def main(argv: Sequence[str] | None = None, prog: str = "python -m local_openai") -> int:
    """`prog` is the name usage messages show (`completion-tagger local-openai` runs this too)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        seeds = load_seed_completions(args.seed_completions) if args.seed_completions else []
        server = LocalOpenAIServer(
            args.host,
            args.port,
            api_key=args.api_key,
            latency=args.latency,
            latency_jitter=args.latency_jitter,
            error_rate=args.error_rate,
            seed=args.seed,
            burst_429_every=args.burst_429_every,
            burst_429_length=args.burst_429_length,
            retry_after=args.retry_after,
            seed_completions=seeds,
            verbose=args.verbose,
        )
        server.start()
    except (OSError, ValueError) as error:
        parser.error(str(error))

    wait_for_stop_signal(
        lambda: print(f"local_openai serving {server.base_url} (admin {server.admin_url})", flush=True)
    )
    server.stop()
    print("local_openai stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
