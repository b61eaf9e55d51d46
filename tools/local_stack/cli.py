"""Command line of `python -m local_stack`."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from completion_tagger.redrive import command as redrive_command
from local_stack import services, stay_up
from local_stack.plan import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TAGS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_LOCAL_CONCURRENCY,
    RunOptions,
)
from local_stack.run import EXIT_SETUP, run
from local_stack.samples import parse_tags

DEFAULT_FUNCTION_LOG = Path(tempfile.gettempdir()) / "completion-tagger-local" / "function.log"


def build_parser(prog: str = "python -m local_stack") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run completion-tagger end to end on an embedded local stack (moto + local OpenAI server).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_parser = commands.add_parser(
        "run",
        help="provision, send the sample tag requests and process them until every message has ended",
        description=(
            "Starts moto (AWS) and the local OpenAI server, provisions what template.yaml declares, sends "
            "the sample tag requests and runs the handler in --concurrency Lambda-like containers (separate "
            "processes, each polling the queue with an SQS event source mapping like Lambda's) until every "
            "message has ended. With OPENAI_API_KEY set and --completion-ids FILE, it tags real "
            "stored completions through the OpenAI API at OPENAI_BASE_URL (default https://api.openai.com/v1) "
            "instead; AWS stays local."
        ),
    )
    run_parser.add_argument(
        "--batch-size", type=_positive_int, metavar="N", help="records per invocation (template's BatchSize)"
    )
    run_parser.add_argument(
        "--batching-window",
        type=float,
        metavar="SECONDS",
        help="how long to gather a batch (template's MaximumBatchingWindowInSeconds)",
    )
    run_parser.add_argument(
        "--visibility-timeout",
        type=int,
        metavar="SECONDS",
        help="the local queue's visibility timeout (default: the template's function timeout, so that no "
        "invocation outlasts it; put-back records come back sooner, on the function's own backoff)",
    )
    run_parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="Lambda-like containers polling the queue at once, each a process of its own, like the event "
        f"source's maximum concurrency (1-{MAX_LOCAL_CONCURRENCY}, default {DEFAULT_CONCURRENCY})",
    )
    run_parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="local API latency per request"
    )
    run_parser.add_argument(
        "--error-rate", type=float, default=0.0, metavar="RATE", help="fraction of local API requests answered 500"
    )
    run_parser.add_argument("--count", type=int, default=0, metavar="N", help="also send N generated random requests")
    run_parser.add_argument("--seed", type=int, default=7, help="random seed for generated requests and faults")
    run_parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up (exit 1) when messages have not all ended by then (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    run_parser.add_argument(
        "--completion-ids",
        type=Path,
        metavar="FILE",
        help="real OpenAI mode (needs OPENAI_API_KEY): one stored completion id per line, one merge each",
    )
    run_parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag to merge in real OpenAI mode, repeatable (default reviewed=true)",
    )
    run_parser.add_argument(
        "--function-log",
        default=str(DEFAULT_FUNCTION_LOG),
        metavar="PATH",
        help="file for the function's own logs and metrics (like CloudWatch Logs); '-' shows them inline",
    )
    run_parser.add_argument(
        "--events-file",
        type=Path,
        metavar="PATH",
        help="also write every result event, as EventBridge delivered it, to PATH (JSON Lines)",
    )
    run_parser.add_argument(
        "--results-file",
        type=Path,
        metavar="PATH",
        help="write `send --wait`'s outcome of each queue sample to PATH (JSON Lines)",
    )
    redrive_command.add_parser(commands)  # `completion-tagger redrive` under its earlier name
    services.add_parser(commands)
    stay_up.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m local_stack") -> int:
    """`prog` is the name usage messages show (`completion-tagger` runs these commands too)."""
    arguments = build_parser(prog).parse_args(argv)
    if arguments.command == "redrive":
        return redrive_command.main(arguments)
    if arguments.command == "services":
        return services.main(arguments)
    if arguments.command == "up":
        return stay_up.main(arguments)
    try:
        tags = parse_tags(arguments.tag) if arguments.tag else dict(DEFAULT_TAGS)
    except ValueError as error:
        print(f"local_stack run: {error}")
        return EXIT_SETUP
    options = RunOptions(
        batch_size=arguments.batch_size,
        batching_window_seconds=arguments.batching_window,
        visibility_timeout_seconds=arguments.visibility_timeout,
        concurrency=arguments.concurrency,
        latency=arguments.latency,
        error_rate=arguments.error_rate,
        count=arguments.count,
        seed=arguments.seed,
        timeout_seconds=arguments.timeout,
        completion_ids_file=arguments.completion_ids,
        tags=tags,
        function_log=None if arguments.function_log == "-" else Path(arguments.function_log),
        events_file=arguments.events_file,
        results_file=arguments.results_file,
    )
    try:
        return run(options)
    except KeyboardInterrupt:
        print("local_stack run: interrupted")
        return 130


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
