"""The `redrive` command: `completion-tagger redrive`, `make redrive`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import click
from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.redrive.client_move import move_messages
from completion_tagger.redrive.move_task import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_TASK_TIMEOUT_SECONDS,
    MAX_MESSAGES_PER_SECOND,
    latest_task_started,
    start_move_task,
    wait_for_move_task,
)
from completion_tagger.redrive.queue_pair import QueuePair, RedriveError, queues_from_stack, queues_from_urls
from completion_tagger.sqs_calls import queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DEFAULT_STACK_NAME = "completion-tagger-dev"

EXIT_OK = 0
EXIT_NOT_DONE = 1  # the move task failed, was cancelled or did not finish in time; or messages were left
EXIT_SETUP = 2  # queues could not be found, or the move could not start

Printer = Callable[[str], None]


@dataclass(frozen=True)
class RedriveOptions:
    """The `redrive` command's options (see `completion-tagger redrive --help`)."""

    stack_name: str | None = None
    dlq_url: str | None = None
    queue_url: str | None = None
    region: str | None = None
    local: bool = False
    max_per_second: int | None = None
    max_messages: int | None = None
    timeout: float = DEFAULT_TASK_TIMEOUT_SECONDS
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    dry_run: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RedriveOptions:
        """The options click parsed; a stack name and queue URLs together are a usage error (exit 2)."""
        if params["stack_name"] and params["dlq_url"]:
            raise click.UsageError("--dlq-url: not allowed with --stack-name")
        return cls(**params)


@click.command(
    "redrive",
    short_help="move dead-lettered tag requests back to the tag-request queue",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--stack-name",
    metavar="NAME",
    help=f"read the queues from this stack's outputs (default {DEFAULT_STACK_NAME} unless URLs are given)",
)
@click.option("--dlq-url", metavar="URL", help="the dead-letter queue (with --queue-url; not with --stack-name)")
@click.option("--queue-url", metavar="URL", help="the tag-request queue (with --dlq-url)")
@click.option("--region", help="AWS region (default: from the AWS environment or profile)")
@click.option("--local", is_flag=True, help="move the messages client-side (receive, send, delete) instead")
@click.option(
    "--max-per-second",
    type=click.IntRange(1, MAX_MESSAGES_PER_SECOND),
    metavar="N",
    help="move task rate limit (1-500 messages per second; default: as fast as SQS allows)",
)
@click.option("--max-messages", type=click.IntRange(1, 10**9), metavar="N", help="--local: move at most N messages")
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TASK_TIMEOUT_SECONDS,
    metavar="SECONDS",
    help=f"stop watching the move task after this long (default {DEFAULT_TASK_TIMEOUT_SECONDS:g}; it goes on)",
)
@click.option(
    "--poll-interval",
    type=float,
    default=DEFAULT_POLL_INTERVAL_SECONDS,
    metavar="SECONDS",
    help=f"seconds between ListMessageMoveTasks calls (default {DEFAULT_POLL_INTERVAL_SECONDS:g})",
)
@click.option("--dry-run", is_flag=True, help="only show the queues and how many messages are dead-lettered")
@click.pass_context
def redrive(context: click.Context, /, **params: Any) -> None:
    """Moves the messages in the dead-letter queue back to the tag-request queue. By default with SQS's
    message-move task (StartMessageMoveTask, destination named explicitly), printing progress until it
    ends. With --local the messages are moved by this command instead (receive, send, then delete), for
    emulators without the move task such as the local stack's moto. AWS credentials, region and
    endpoint come from the usual AWS environment variables and profile.

    Exit codes: 0 done (or nothing to do); 1 the move did not finish or messages were left; 2 usage
    errors, queues that cannot be found, or a move that cannot start.
    """
    context.exit(main(RedriveOptions.from_params(params)))


def main(
    options: RedriveOptions,
    *,
    session: boto3.session.Session | None = None,
    out: Printer = print,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `redrive` with its options; returns the exit code."""
    if bool(options.dlq_url) != bool(options.queue_url):
        out("redrive: --dlq-url and --queue-url go together")
        return EXIT_SETUP
    try:
        session = session or boto3.session.Session(region_name=options.region)
        sqs: SQSClient = session.client("sqs")
        queues = _queues(session, sqs, options)
        depth = queue_depth(sqs, queues.dead_letter_queue_url)
    except (RedriveError, ClientError, BotoCoreError) as error:
        out(f"redrive: {error}")
        return EXIT_SETUP
    out(f"dead-letter queue {queues.dead_letter_queue_arn}: {depth.visible} message(s), {depth.in_flight} in flight")
    out(f"destination       {queues.queue_arn}")
    if options.dry_run:
        return EXIT_OK
    if depth.visible == 0 and depth.in_flight == 0:
        out("nothing to redrive")
        return EXIT_OK
    if options.local:
        return _move_locally(sqs, queues, options, out)
    return _move_with_task(sqs, queues, options, out, sleep)


def _queues(session: boto3.session.Session, sqs: SQSClient, options: RedriveOptions) -> QueuePair:
    """The queues named by URL, else those of the stack (the default stack when none is named)."""
    if options.dlq_url and options.queue_url:
        return queues_from_urls(sqs, options.dlq_url, options.queue_url)
    return queues_from_stack(session.client("cloudformation"), options.stack_name or DEFAULT_STACK_NAME)


def _move_with_task(
    sqs: SQSClient,
    queues: QueuePair,
    options: RedriveOptions,
    out: Printer,
    sleep: Callable[[float], None],
) -> int:
    try:
        previous_started_ms = latest_task_started(sqs, queues.dead_letter_queue_arn)
        handle = start_move_task(sqs, queues, options.max_per_second)
        out("message-move task started")
        result = wait_for_move_task(
            sqs,
            queues,
            handle,
            previous_started_ms,
            poll_interval_seconds=options.poll_interval,
            timeout_seconds=options.timeout,
            out=out,
            sleep=sleep,
        )
    except RedriveError as error:
        out(f"redrive: {error}")
        return EXIT_SETUP
    if result.completed:
        out(f"redrive: done, {result.moved} message(s) moved back to the queue")
        return EXIT_OK
    reason = f": {result.failure_reason}" if result.failure_reason else ""
    out(f"redrive: move task {result.status}{reason} ({result.moved} message(s) moved)")
    return EXIT_NOT_DONE


def _move_locally(sqs: SQSClient, queues: QueuePair, options: RedriveOptions, out: Printer) -> int:
    out("moving messages client-side (receive, send, then delete)")
    try:
        result = move_messages(sqs, queues, max_messages=options.max_messages, wait_seconds=1, out=out)
    except (RedriveError, ClientError, BotoCoreError) as error:
        out(f"redrive: {error}")
        return EXIT_SETUP
    out(
        f"redrive: {result.moved} message(s) moved back to the queue "
        f"(received {result.received}, sent {result.sent}, deleted {result.deleted})"
    )
    # Done means the dead-letter queue is empty, not that this run moved what it saw: messages an earlier
    # run (or anyone else) received are in flight, invisible to this one, until their visibility ends.
    try:
        left = queue_depth(sqs, queues.dead_letter_queue_url)
    except (ClientError, BotoCoreError) as error:
        out(f"redrive: could not count what is left in the dead-letter queue: {error}")
        return EXIT_NOT_DONE
    if left.total:
        asked_for_fewer = options.max_messages is not None and result.received >= options.max_messages
        out(
            f"redrive: {left.total} message(s) still in the dead-letter queue ({left.in_flight} in flight: "
            "received by an earlier or another run, visible again when their visibility timeout ends; "
            "run again then)"
            if left.in_flight and not asked_for_fewer
            else f"redrive: {left.total} message(s) still in the dead-letter queue"
        )
        return EXIT_OK if result.clean and asked_for_fewer else EXIT_NOT_DONE
    if not result.clean:
        return EXIT_NOT_DONE
    out("redrive: done, the dead-letter queue is empty")
    return EXIT_OK


def parse_arguments(argv: Sequence[str], prog: str = "completion-tagger") -> RedriveOptions:
    """Parse `redrive` options as `prog redrive` does, without running it."""
    with redrive.make_context(f"{prog} redrive", list(argv)) as context:
        return RedriveOptions.from_params(context.params)


def command_line(argv: Sequence[str], prog: str = "completion-tagger") -> int:
    """`prog redrive ARGV...` in this process: the exit code (a usage error raises click.UsageError)."""
    code = redrive.main(list(argv), prog_name=f"{prog} redrive", standalone_mode=False)
    return int(code)
