"""Which of a run's messages are in the dead-letter queue: looked at without taking them away.

Each message is received with a visibility timeout of 0, so it stays available to the operator's redrive;
SQS keeps a message's id when it moves it to the dead-letter queue, and the body carries the request id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_RECEIVES = 50  # at most 500 messages looked at: enough to find a run's, bounded for a crowded queue


def dead_lettered(sqs: SQSClient, queue_url: str) -> tuple[set[str], set[str]]:
    """The message ids and request ids seen in the dead-letter queue (empty when it cannot be read)."""
    message_ids: set[str] = set()
    request_ids: set[str] = set()
    for _ in range(MAX_RECEIVES):
        try:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
        except (ClientError, BotoCoreError):
            break
        new = [message for message in messages if message["MessageId"] not in message_ids]
        if not new:
            break
        for message in new:
            message_ids.add(message["MessageId"])
            request_id = _request_id(message.get("Body", ""))
            if request_id:
                request_ids.add(request_id)
    return message_ids, request_ids


def _request_id(body: str) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("detail"), dict):
        document = document["detail"]  # an upstream event EventBridge could not deliver
    value = document.get("request_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None
