"""Lambda's SQS event shape, and Lambda's reading of a partial batch response.

Both follow what Lambda does with an SQS event source mapping that has `ReportBatchItemFailures`:
ReceiveMessage output (boto3's PascalCase) becomes `Records` in Lambda's camelCase shape, and the
function's return value decides which records are deleted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local_stack.account import REGION

# The system attributes Lambda always puts in `attributes` (others, e.g. AWSTraceHeader or the FIFO
# ones, are passed through when SQS returns them).
REQUIRED_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


def lambda_sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """`{"Records": [...]}` as Lambda delivers it, from ReceiveMessage `Messages`."""
    return {"Records": [lambda_sqs_record(message, queue_arn, region) for message in messages]}


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """One record: messageId, receiptHandle, body, attributes, messageAttributes, md5s, source fields."""
    attributes = {str(name): str(value) for name, value in (message.get("Attributes") or {}).items()}
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in attributes]
    if missing:
        raise ValueError(f"ReceiveMessage did not return {', '.join(missing)}: ask for AttributeNames=All")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: lambda_message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's MessageAttributeValue as Lambda writes it: camelCase, binary values base64-encoded."""
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _base64(value["BinaryValue"])
    converted["stringListValues"] = list(value.get("StringListValues") or [])
    converted["binaryListValues"] = [_base64(item) for item in value.get("BinaryListValues") or []]
    converted["dataType"] = value["DataType"]
    return converted


def _base64(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class BatchOutcome:
    """How Lambda reads a function's answer: the ids to put back, or the whole batch failed and why."""

    failed_ids: frozenset[str]
    whole_batch_error: str | None = None

    @property
    def whole_batch_failed(self) -> bool:
        return self.whole_batch_error is not None


def read_batch_response(response: Any, message_ids: Sequence[str]) -> BatchOutcome:
    """Apply Lambda's rules for `ReportBatchItemFailures` to a handler's return value.

    Complete success: None, {}, a missing/None/empty `batchItemFailures`. Complete failure (nothing
    deleted): a response that is not JSON, not an object, a `batchItemFailures` that is not a list,
    or an item whose `itemIdentifier` is missing, null, empty or not a message id of this batch.
    """
    everything = frozenset(message_ids)
    try:
        response = json.loads(json.dumps(response))  # what crosses the Lambda runtime boundary
    except (TypeError, ValueError) as error:
        return BatchOutcome(everything, f"response is not JSON-serialisable ({error})")
    if response is None:
        return BatchOutcome(frozenset())
    if not isinstance(response, dict):
        return BatchOutcome(everything, f"response is a {type(response).__name__}, not an object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return BatchOutcome(frozenset())
    if not isinstance(failures, list):
        return BatchOutcome(everything, "batchItemFailures is not a list")
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return BatchOutcome(everything, f"batchItemFailures has an invalid item {item!r}")
        if identifier not in everything:
            return BatchOutcome(everything, f"itemIdentifier {identifier!r} is not a message of this batch")
        failed.add(identifier)
    return BatchOutcome(frozenset(failed))
