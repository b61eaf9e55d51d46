"""Was a request completed? How `send --wait` tells a duplicate (which ends without a result event) from a
line still under way: the function keeps each completed request in the idempotency table.

`CompletedRequests` is what the follower asks. Two shapes of the table answer it:
- `CompletionRecords`: the per-completion record (key `completion-tagger-completion#<completion id>`), whose
  `completed` attribute maps the request hash of each request completed on the completion to its entry
  (docs/design.md, "Concurrency and ordering");
- `IdempotencyRecords`: the record Powertools writes per request (key `completion-tagger#<sha256 of the
  request's idempotency payload>`, status `COMPLETED`), the same key the function computes
  (`tagger.logic.unit_of_work`), which is where completed requests are kept without per-completion leases.
`EitherRecord` asks one, then the other.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tagger.logic.unit_of_work import IDEMPOTENCY_KEY_PREFIX
from tagger.models import TagRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class CompletedRequests(Protocol):
    """Whether the function has recorded a request as completed."""

    def is_completed(self, request: TagRequest) -> bool: ...


def idempotency_key(request: TagRequest) -> str:
    """The key of a request's idempotency record, as Powertools computes it for the function."""
    payload = json.dumps(request.idempotency_payload(), sort_keys=True).encode()
    return f"{IDEMPOTENCY_KEY_PREFIX}#{hashlib.sha256(payload).hexdigest()}"


COMPLETION_RECORD_PREFIX = "completion-tagger-completion#"


class _TableRecords:
    """A table of the function read one record at a time by `id`, with a consistent GetItem."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def _item(self, record_id: str, **projection: Any) -> dict[str, AttributeValueTypeDef]:
        """The record's projected attributes; empty when there is no record, or when the read fails (unknown:
        the line stays without a result rather than being called a duplicate)."""
        try:
            item = self._dynamodb.get_item(
                TableName=self._table, Key={"id": {"S": record_id}}, ConsistentRead=True, **projection
            ).get("Item")
        except (ClientError, BotoCoreError):
            return {}
        return dict(item or {})


class CompletionRecords(_TableRecords):
    """`CompletedRequests` from the per-completion record's `completed` map (a consistent GetItem each)."""

    def is_completed(self, request: TagRequest) -> bool:
        item = self._item(COMPLETION_RECORD_PREFIX + request.completion_id, ProjectionExpression="completed")
        text = item.get("completed", {}).get("S")
        try:
            completed = json.loads(text) if text else {}
        except ValueError:
            return False
        return isinstance(completed, dict) and request.request_hash() in completed


class EitherRecord:
    """Completed when any of the given shapes says so."""

    def __init__(self, *shapes: CompletedRequests) -> None:
        self._shapes = shapes

    def is_completed(self, request: TagRequest) -> bool:
        return any(shape.is_completed(request) for shape in self._shapes)


class IdempotencyRecords(_TableRecords):
    """`CompletedRequests` from the per-request records of the idempotency table (a consistent GetItem each)."""

    def is_completed(self, request: TagRequest) -> bool:
        item = self._item(
            idempotency_key(request),
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        )
        return item.get("status", {}).get("S") == "COMPLETED"
