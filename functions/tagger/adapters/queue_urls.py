"""SQS queue URLs from the queue ARNs that records carry (`eventSourceARN`), looked up once per queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class QueueUrls:
    """A per-container cache: SQS calls take a queue URL, records name their queue by ARN."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}

    def url(self, sqs: SQSClient, queue_arn: str) -> str:
        """The queue's URL; raises ValueError for an ARN that is not an SQS queue's."""
        if queue_arn not in self._urls:
            parts = queue_arn.split(":")
            if len(parts) != 6 or parts[2] != "sqs":
                raise ValueError("not an SQS queue ARN")
            account, name = parts[4], parts[5]
            self._urls[queue_arn] = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._urls[queue_arn]
