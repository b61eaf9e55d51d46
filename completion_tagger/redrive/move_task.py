"""SQS's message-move task (AWS): start it from the dead-letter queue to the named queue, watch it end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.redrive.queue_pair import QueuePair, RedriveError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ListMessageMoveTasksResultEntryTypeDef

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
DEFAULT_TASK_TIMEOUT_SECONDS = 3600.0
MAX_MESSAGES_PER_SECOND = 500  # StartMessageMoveTask's limit


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


def latest_task_started(sqs: SQSClient, source_arn: str) -> int | None:
    """StartedTimestamp (SQS's clock) of the most recent move task on the queue, None if it never had one.

    Read before starting a task, it tells that task from the ones before it by SQS's own clock, whatever
    this machine's clock says."""
    try:
        results = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
    except (ClientError, BotoCoreError) as error:
        raise RedriveError(f"ListMessageMoveTasks failed: {error}") from None
    return int(results[0].get("StartedTimestamp", 0)) if results else None


def wait_for_move_task(
    sqs: SQSClient,
    queues: QueuePair,
    task_handle: str,
    previous_started_ms: int | None,
    *,
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_TASK_TIMEOUT_SECONDS,
    out: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> MoveTaskResult:
    """Poll ListMessageMoveTasks until the task ends; prints progress whenever it changes.

    ListMessageMoveTasks names a task's handle only while it is RUNNING. A finished task is ours when it is
    the most recent one on the dead-letter queue and started after the task that was most recent before we
    started ours (`previous_started_ms`, from `latest_task_started`; both SQS's timestamps, so this
    machine's clock plays no part): only one task may be active per queue. Until the listing shows it (the
    earlier finished task may still come first), it counts as RUNNING.
    """
    deadline = clock() + timeout_seconds
    last_line = ""
    task: ListMessageMoveTasksResultEntryTypeDef = {}
    while True:
        task = _current_task(sqs, queues.dead_letter_queue_arn, task_handle, previous_started_ms) or {}
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
    sqs: SQSClient, source_arn: str, task_handle: str, previous_started_ms: int | None
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
    if previous_started_ms is not None and task.get("StartedTimestamp", 0) <= previous_started_ms:
        return None  # the earlier task, still listed first
    return task


def _progress(task: ListMessageMoveTasksResultEntryTypeDef) -> str:
    moved = task.get("ApproximateNumberOfMessagesMoved", 0)
    to_move = task.get("ApproximateNumberOfMessagesToMove")
    text = f"{moved} of {to_move} messages moved" if to_move is not None else f"{moved} messages moved"
    if task.get("FailureReason"):
        text += f" (failure reason: {task['FailureReason']})"
    return text
