"""Move dead-lettered tag requests back to the tag-request queue (`make redrive`).

Two ways, same outcome:

- **SQS's message-move task** (AWS): `StartMessageMoveTask` from the dead-letter queue to the
  tag-request queue, named explicitly (the dead-letter queue also receives the upstream rule's failed
  deliveries, which "back to the source queue" could not route), then `ListMessageMoveTasks` until
  the task is COMPLETED, FAILED or CANCELLED. SQS does the moving; this only starts and watches it.
- **Client-side move** (`local=True`): for emulators without the move task (moto has none): receive
  from the dead-letter queue, send each message to the queue with the same body and message
  attributes, and only then delete it from the dead-letter queue. A crash between the send and the
  delete leaves the message in both queues, a duplicate that the function's idempotency absorbs;
  no order of failures loses one. Bounded: a message is sent at most once per run, and the run stops
  at the first empty receive (or after `max_messages`).

Queue URLs and ARNs come from the stack's outputs (`TagRequestQueueUrl`, `TagRequestQueueArn`,
`TagRequestDeadLetterQueueUrl`, `TagRequestDeadLetterQueueArn`) or from explicit URLs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.sqs_queues import BATCH_LIMIT, delete_messages, queue_depth
from completion_tagger.stack import QUEUE_URL_OUTPUT, StackError, stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ListMessageMoveTasksResultEntryTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

QUEUE_ARN_OUTPUT = "TagRequestQueueArn"
DLQ_URL_OUTPUT = "TagRequestDeadLetterQueueUrl"
DLQ_ARN_OUTPUT = "TagRequestDeadLetterQueueArn"
DEFAULT_STACK_NAME = "completion-tagger-dev"

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
DEFAULT_TASK_TIMEOUT_SECONDS = 3600.0
CLOCK_SKEW_ALLOWANCE_MS = 5000  # between this machine's clock and SQS's StartedTimestamp
MAX_MESSAGES_PER_SECOND = 500  # StartMessageMoveTask's limit

# How long a received dead-letter message stays hidden while it is being moved; if this run dies,
# it reappears in the dead-letter queue after this long.
MOVE_VISIBILITY_TIMEOUT_SECONDS = 60
PROGRESS_EVERY_MESSAGES = 100

EXIT_OK = 0
EXIT_NOT_DONE = 1  # the move task failed, was cancelled or did not finish in time; or messages were left
EXIT_SETUP = 2  # queues could not be found, or the move could not start

Printer = Callable[[str], None]


class RedriveError(RuntimeError):
    """The redrive could not start, or SQS reported the move task failed. The message says why."""


@dataclass(frozen=True)
class QueuePair:
    """The dead-letter queue (the source) and the tag-request queue (the destination)."""

    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    queue_url: str
    queue_arn: str


def queues_from_stack(cloudformation: Any, stack_name: str) -> QueuePair:
    """The queues from a deployed stack's outputs (`aws cloudformation describe-stacks`)."""
    wanted = (DLQ_URL_OUTPUT, DLQ_ARN_OUTPUT, QUEUE_URL_OUTPUT, QUEUE_ARN_OUTPUT)
    try:
        outputs = stack_outputs(cloudformation, stack_name, wanted)
    except StackError as error:
        raise RedriveError(str(error)) from None
    return QueuePair(*(outputs[name] for name in wanted))


def queues_from_urls(sqs: SQSClient, dead_letter_queue_url: str, queue_url: str) -> QueuePair:
    """The queues from their URLs; their ARNs are looked up (GetQueueAttributes)."""
    return QueuePair(
        dead_letter_queue_url,
        _queue_arn(sqs, dead_letter_queue_url),
        queue_url,
        _queue_arn(sqs, queue_url),
    )


def _queue_arn(sqs: SQSClient, queue_url: str) -> str:
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    except (ClientError, BotoCoreError) as error:
        raise RedriveError(f"could not read queue {queue_url}: {error}") from None
    return attributes["QueueArn"]


# ----- SQS's message-move task (AWS) -----


@dataclass(frozen=True)
class MoveTaskResult:
    """How a message-move task ended (or where it was when we stopped watching)."""

    task_handle: str
    status: str  # COMPLETED, FAILED, CANCELLED, or RUNNING when the wait timed out
    moved: int
    to_move: int | None
    failure_reason: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == "COMPLETED"


def start_move_task(sqs: SQSClient, queues: QueuePair, max_per_second: int | None = None) -> str:
    """Start moving every dead-lettered message to the tag-request queue; returns the task handle."""
    if queues.dead_letter_queue_arn == queues.queue_arn:
        raise RedriveError("the dead-letter queue and the destination are the same queue")
    try:
        if max_per_second is None:
            response = sqs.start_message_move_task(
                SourceArn=queues.dead_letter_queue_arn, DestinationArn=queues.queue_arn
            )
        else:
            response = sqs.start_message_move_task(
                SourceArn=queues.dead_letter_queue_arn,
                DestinationArn=queues.queue_arn,
                MaxNumberOfMessagesPerSecond=max_per_second,
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        hint = (
            " (is a move task already running on this queue? only one may be active)" if "Unsupported" in code else ""
        )
        raise RedriveError(f"StartMessageMoveTask failed: {error}{hint}") from None
    except BotoCoreError as error:
        raise RedriveError(f"StartMessageMoveTask failed: {error}") from None
    return response["TaskHandle"]


def wait_for_move_task(
    sqs: SQSClient,
    queues: QueuePair,
    task_handle: str,
    started_at_ms: int,
    *,
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_TASK_TIMEOUT_SECONDS,
    out: Printer = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MoveTaskResult:
    """Poll ListMessageMoveTasks until the task ends; prints progress whenever it changes.

    ListMessageMoveTasks names a task's handle only while it is RUNNING. A finished task is ours when it is
    the most recent one on the dead-letter queue and started no earlier than we started it
    (`started_at_ms`, epoch milliseconds, less a clock-skew allowance): only one task may be active per
    queue. Until the listing shows it (an older finished task may still come first), it counts as RUNNING.
    """
    deadline = clock() + timeout_seconds
    last_line = ""
    task: ListMessageMoveTasksResultEntryTypeDef = {}
    while True:
        task = _current_task(sqs, queues.dead_letter_queue_arn, task_handle, started_at_ms) or {}
        status = task.get("Status", "RUNNING")
        line = f"  {status}: {_progress(task)}" if task else "  RUNNING: not listed yet"
        if line != last_line:
            out(line)
            last_line = line
        if status in TERMINAL_STATUSES:
            break
        if clock() >= deadline:
            out(
                f"  still RUNNING after {timeout_seconds:g} s; the task goes on without us "
                f"(aws sqs list-message-move-tasks --source-arn {queues.dead_letter_queue_arn})"
            )
            break
        sleep(poll_interval_seconds)
    to_move = task.get("ApproximateNumberOfMessagesToMove")
    return MoveTaskResult(
        task_handle=task_handle,
        status=task.get("Status", "RUNNING"),
        moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=None if to_move is None else int(to_move),
        failure_reason=task.get("FailureReason"),
    )


def _current_task(
    sqs: SQSClient, source_arn: str, task_handle: str, started_at_ms: int
) -> ListMessageMoveTasksResultEntryTypeDef | None:
    """Our task as listed now, or None when the listing does not show it (yet)."""
    try:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
    except (ClientError, BotoCoreError) as error:
        raise RedriveError(f"ListMessageMoveTasks failed: {error}") from None
    if not results:
        return None
    task = results[0]
    handle = task.get("TaskHandle")
    if handle == task_handle:
        return task
    if handle is not None:
        raise RedriveError(f"another move task ({handle}) is now the most recent on {source_arn}")
    if task.get("StartedTimestamp", 0) < started_at_ms - CLOCK_SKEW_ALLOWANCE_MS:
        return None  # an earlier task, finished before ours was listed
    return task


def _progress(task: ListMessageMoveTasksResultEntryTypeDef) -> str:
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    to_move = task.get("ApproximateNumberOfMessagesToMove")
    text = f"{moved} of {to_move} messages moved" if to_move is not None else f"{moved} messages moved"
    if task.get("FailureReason"):
        text += f" (failure reason: {task['FailureReason']})"
    return text


# ----- client-side move (the local stack) -----


@dataclass(frozen=True)
class MoveResult:
    """What a client-side move did. `moved` messages are on the queue and gone from the dead-letter queue."""

    received: int
    sent: int
    deleted: int
    send_failures: int
    delete_failures: int

    @property
    def moved(self) -> int:
        return self.deleted

    @property
    def clean(self) -> bool:
        """Every message received was sent and deleted."""
        return self.send_failures == 0 and self.delete_failures == 0


def move_messages(
    sqs: SQSClient,
    queues: QueuePair,
    *,
    max_messages: int | None = None,
    wait_seconds: int = 0,
    visibility_timeout_seconds: int = MOVE_VISIBILITY_TIMEOUT_SECONDS,
    out: Printer = print,
) -> MoveResult:
    """Move messages from the dead-letter queue to the queue: receive, send, then delete.

    Stops at the first empty receive, after `max_messages`, or when a send fails (what was not sent stays
    in the dead-letter queue, visible again after `visibility_timeout_seconds`). A message whose send
    succeeded but whose delete failed reappears in the dead-letter queue; if it comes round again in the
    same run it is deleted without being sent a second time.
    """
    if queues.dead_letter_queue_url == queues.queue_url or queues.dead_letter_queue_arn == queues.queue_arn:
        raise RedriveError("the dead-letter queue and the destination are the same queue")
    if queues.queue_url.endswith(".fifo") or queues.dead_letter_queue_url.endswith(".fifo"):
        raise RedriveError("FIFO queues are not supported by the client-side move")
    sent_ids: set[str] = set()
    received = sent = deleted = send_failures = delete_failures = 0
    while max_messages is None or received < max_messages:
        count = BATCH_LIMIT if max_messages is None else min(BATCH_LIMIT, max_messages - received)
        messages = sqs.receive_message(
            QueueUrl=queues.dead_letter_queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["AWSTraceHeader"],
        ).get("Messages", [])
        if not messages:
            break
        received += len(messages)
        # Already sent in this run (its delete failed and it came back): delete only, never send twice.
        already_sent = [message for message in messages if message["MessageId"] in sent_ids]
        to_send = [message for message in messages if message["MessageId"] not in sent_ids]
        accepted, failed = _send(sqs, queues.queue_url, to_send)
        sent += len(accepted)
        send_failures += failed
        sent_ids.update(message["MessageId"] for message in accepted)
        done, not_done = _delete(sqs, queues.dead_letter_queue_url, accepted + already_sent)
        deleted += done
        delete_failures += not_done
        if deleted // PROGRESS_EVERY_MESSAGES > (deleted - done) // PROGRESS_EVERY_MESSAGES:
            out(f"  moved {deleted} so far")
        if failed:
            break  # don't spin on a destination that refuses messages
    result = MoveResult(received, sent, deleted, send_failures, delete_failures)
    if send_failures:
        out(f"  {send_failures} message(s) could not be sent; they stay in the dead-letter queue")
    if delete_failures:
        out(
            f"  {delete_failures} message(s) were sent but not deleted from the dead-letter queue; they will "
            "reappear there as duplicates of what was sent (idempotency absorbs a second delivery)"
        )
    return result


def _send(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> tuple[list[MessageTypeDef], int]:
    """SendMessageBatch with each message's body and attributes; returns (the accepted, number refused)."""
    if not messages:
        return [], 0
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for index, message in enumerate(messages):
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": message["Body"]}
        attributes = {name: _attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()}
        if attributes:
            entry["MessageAttributes"] = attributes
        trace_header = (message.get("Attributes") or {}).get("AWSTraceHeader")
        if trace_header:
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}}
        entries.append(entry)
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except (ClientError, BotoCoreError):
        return [], len(messages)
    accepted = [messages[int(entry["Id"])] for entry in response.get("Successful", [])]
    return accepted, len(messages) - len(accepted)


def _attribute(value: Mapping[str, Any]) -> MessageAttributeValueTypeDef:
    """A received message attribute as SendMessage takes it (the list values are reserved by SQS)."""
    attribute: MessageAttributeValueTypeDef = {"DataType": str(value["DataType"])}
    if "StringValue" in value:
        attribute["StringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["BinaryValue"] = value["BinaryValue"]
    return attribute


def _delete(sqs: SQSClient, queue_url: str, messages: list[MessageTypeDef]) -> tuple[int, int]:
    """(deleted, not deleted); when the call fails, every message counts as not deleted."""
    try:
        done = len(delete_messages(sqs, queue_url, messages))
    except (ClientError, BotoCoreError):
        return 0, len(messages)
    return done, len(messages) - done


# ----- command line: `python -m local_stack redrive` -----


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the `redrive` subcommand to `python -m local_stack`'s subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "redrive",
        help="move dead-lettered tag requests back to the tag-request queue",
        description=(
            "Moves the messages in the dead-letter queue back to the tag-request queue. By default with SQS's "
            "message-move task (StartMessageMoveTask, destination named explicitly), printing progress until it "
            "ends. With --local the messages are moved by this command instead (receive, send, then delete), for "
            "emulators without the move task such as the local stack's moto. AWS credentials, region and "
            "endpoint come from the usual AWS environment variables and profile."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--stack-name",
        metavar="NAME",
        help=f"read the queues from this stack's outputs (default {DEFAULT_STACK_NAME} unless URLs are given)",
    )
    where.add_argument("--dlq-url", metavar="URL", help="the dead-letter queue (with --queue-url)")
    parser.add_argument("--queue-url", metavar="URL", help="the tag-request queue (with --dlq-url)")
    parser.add_argument("--region", help="AWS region (default: from the AWS environment or profile)")
    parser.add_argument(
        "--local", action="store_true", help="move the messages client-side (receive, send, delete) instead"
    )
    parser.add_argument(
        "--max-per-second",
        type=_int_between(1, MAX_MESSAGES_PER_SECOND),
        metavar="N",
        help="move task rate limit (1-500 messages per second; default: as fast as SQS allows)",
    )
    parser.add_argument(
        "--max-messages", type=_int_between(1, 10**9), metavar="N", help="--local: move at most N messages"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TASK_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"stop watching the move task after this long (default {DEFAULT_TASK_TIMEOUT_SECONDS:g}; it goes on)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"seconds between ListMessageMoveTasks calls (default {DEFAULT_POLL_INTERVAL_SECONDS:g})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="only show the queues and how many messages are dead-lettered"
    )
    return parser


def main(
    arguments: argparse.Namespace,
    *,
    session: boto3.session.Session | None = None,
    out: Printer = print,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> int:
    """Run `redrive` with parsed arguments; returns the exit code."""
    if bool(arguments.dlq_url) != bool(arguments.queue_url):
        out("redrive: --dlq-url and --queue-url go together")
        return EXIT_SETUP
    try:
        session = session or boto3.session.Session(region_name=arguments.region)
        sqs: SQSClient = session.client("sqs")
        if arguments.dlq_url:
            queues = queues_from_urls(sqs, arguments.dlq_url, arguments.queue_url)
        else:
            stack_name = arguments.stack_name or DEFAULT_STACK_NAME
            queues = queues_from_stack(session.client("cloudformation"), stack_name)
        depth = queue_depth(sqs, queues.dead_letter_queue_url)
    except (RedriveError, ClientError, BotoCoreError) as error:
        out(f"redrive: {error}")
        return EXIT_SETUP
    out(f"dead-letter queue {queues.dead_letter_queue_arn}: {depth.visible} message(s), {depth.in_flight} in flight")
    out(f"destination       {queues.queue_arn}")
    if arguments.dry_run:
        return EXIT_OK
    if depth.visible == 0 and depth.in_flight == 0:
        out("nothing to redrive")
        return EXIT_OK
    if arguments.local:
        return _move_locally(sqs, queues, arguments, out)
    return _move_with_task(sqs, queues, arguments, out, sleep, int(wall_clock() * 1000))


def _move_with_task(
    sqs: SQSClient,
    queues: QueuePair,
    arguments: argparse.Namespace,
    out: Printer,
    sleep: Callable[[float], None],
    started_at_ms: int,
) -> int:
    try:
        handle = start_move_task(sqs, queues, arguments.max_per_second)
        out("message-move task started")
        result = wait_for_move_task(
            sqs,
            queues,
            handle,
            started_at_ms,
            poll_interval_seconds=arguments.poll_interval,
            timeout_seconds=arguments.timeout,
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


def _move_locally(sqs: SQSClient, queues: QueuePair, arguments: argparse.Namespace, out: Printer) -> int:
    out("moving messages client-side (receive, send, then delete)")
    try:
        result = move_messages(sqs, queues, max_messages=arguments.max_messages, wait_seconds=1, out=out)
    except (RedriveError, ClientError, BotoCoreError) as error:
        out(f"redrive: {error}")
        return EXIT_SETUP
    out(
        f"redrive: {result.moved} message(s) moved back to the queue "
        f"(received {result.received}, sent {result.sent}, deleted {result.deleted})"
    )
    return EXIT_OK if result.clean else EXIT_NOT_DONE


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `redrive` arguments on their own (tests, and callers without the full CLI)."""
    parser = argparse.ArgumentParser(prog="python -m local_stack")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["redrive", *argv])
