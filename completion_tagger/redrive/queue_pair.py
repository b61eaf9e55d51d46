"""Which queues a redrive moves between: from a deployed stack's outputs, or from their URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from completion_tagger.stack import QUEUE_URL_OUTPUT, StackError, stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUE_ARN_OUTPUT = "TagRequestQueueArn"
DLQ_URL_OUTPUT = "TagRequestDeadLetterQueueUrl"
DLQ_ARN_OUTPUT = "TagRequestDeadLetterQueueArn"


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
