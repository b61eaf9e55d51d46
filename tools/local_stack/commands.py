"""The commands of `python -m local_stack`: `run` (`make run`, also `completion-tagger run`), `services`
(`make local-services`), `up` (`make local-stack`) and `redrive` (`completion-tagger redrive`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from completion_tagger.redrive.command import redrive
from local_stack.end_to_end import EXIT_SETUP, run
from local_stack.plan import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TAGS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_LOCAL_CONCURRENCY,
    RunOptions,
)
from local_stack.samples import parse_tags
from local_stack.services import services
from local_stack.stay_up import up

DEFAULT_FUNCTION_LOG = Path(tempfile.gettempdir()) / "completion-tagger-local" / "function.log"


@click.group("local_stack", context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run completion-tagger end to end on an embedded local stack (moto + local OpenAI server)."""


@cli.command(
    "run",
    short_help="provision, send the sample tag requests and process them until every message has ended",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), metavar="N", help="records per invocation (template's BatchSize)"
)
@click.option(
    "--batching-window",
    type=float,
    metavar="SECONDS",
    help="how long to gather a batch (template's MaximumBatchingWindowInSeconds)",
)
@click.option(
    "--visibility-timeout",
    type=int,
    metavar="SECONDS",
    help="the local queue's visibility timeout (default: the template's function timeout, so that no "
    "invocation outlasts it; put-back records come back sooner, on the function's own backoff)",
)
@click.option(
    "--concurrency",
    type=int,
    default=DEFAULT_CONCURRENCY,
    metavar="N",
    help="Lambda-like containers polling the queue at once, each a process of its own, like the event "
    f"source's maximum concurrency (1-{MAX_LOCAL_CONCURRENCY}, default {DEFAULT_CONCURRENCY})",
)
@click.option("--latency", type=float, default=0.0, metavar="SECONDS", help="local API latency per request")
@click.option(
    "--error-rate", type=float, default=0.0, metavar="RATE", help="fraction of local API requests answered 500"
)
@click.option("--count", type=int, default=0, metavar="N", help="also send N generated random requests")
@click.option("--seed", type=int, default=7, metavar="SEED", help="random seed for generated requests and faults")
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT_SECONDS,
    metavar="SECONDS",
    help=f"give up (exit 1) when messages have not all ended by then (default {DEFAULT_TIMEOUT_SECONDS:g})",
)
@click.option(
    "--completion-ids",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="real OpenAI mode (needs OPENAI_API_KEY): one stored completion id per line, one merge each",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="a tag to merge in real OpenAI mode, repeatable (default reviewed=true)",
)
@click.option(
    "--function-log",
    default=str(DEFAULT_FUNCTION_LOG),
    metavar="PATH",
    help="file for the function's own logs and metrics (like CloudWatch Logs); '-' shows them inline",
)
@click.option(
    "--events-file",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="also write every result event, as EventBridge delivered it, to PATH (JSON Lines)",
)
@click.option(
    "--results-file",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="write `send --wait`'s outcome of each queue sample to PATH (JSON Lines)",
)
@click.pass_context
def run_command(
    context: click.Context,
    batch_size: int | None,
    batching_window: float | None,
    visibility_timeout: int | None,
    concurrency: int,
    latency: float,
    error_rate: float,
    count: int,
    seed: int,
    timeout: float,
    completion_ids: Path | None,
    tags: tuple[str, ...],
    function_log: str,
    events_file: Path | None,
    results_file: Path | None,
) -> None:
    """Starts moto (AWS) and the local OpenAI server, provisions what template.yaml declares, sends
    the sample tag requests and runs the handler in --concurrency Lambda-like containers (separate
    processes, each polling the queue with an SQS event source mapping like Lambda's) until every
    message has ended. With OPENAI_API_KEY set and --completion-ids FILE, it tags real
    stored completions through the OpenAI API at OPENAI_BASE_URL (default https://api.openai.com/v1)
    instead; AWS stays local.
    """
    try:
        merged_tags = parse_tags(list(tags)) if tags else dict(DEFAULT_TAGS)
    except ValueError as error:
        print(f"local_stack run: {error}")
        context.exit(EXIT_SETUP)
    options = RunOptions(
        batch_size=batch_size,
        batching_window_seconds=batching_window,
        visibility_timeout_seconds=visibility_timeout,
        concurrency=concurrency,
        latency=latency,
        error_rate=error_rate,
        count=count,
        seed=seed,
        timeout_seconds=timeout,
        completion_ids_file=completion_ids,
        tags=merged_tags,
        function_log=None if function_log == "-" else Path(function_log),
        events_file=events_file,
        results_file=results_file,
    )
    try:
        code = run(options)
    except KeyboardInterrupt:
        print("local_stack run: interrupted")
        code = 130
    context.exit(code)


cli.add_command(redrive)  # `completion-tagger redrive` under its earlier name
cli.add_command(services)
cli.add_command(up)
