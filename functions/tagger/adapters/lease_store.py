"""The per-completion record in DynamoDB: a lease, taken and released with conditional writes, and the history.

It lives in the idempotency table beside Powertools' records, under a key of its own
(`completion-tagger-completion#<completion_id>`), so the function needs no second table and no new
permissions. Taking the lease reads the history in the same round trip (UpdateItem returning the item);
releasing it writes the history back, on condition that the lease is still ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tagger.errors import LeaseHeld, LeaseLost, LeaseStoreUnavailable
from tagger.logic.key_versions import CompletionHistory
from tagger.ports import LeaseRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "completion-tagger-completion#"
CONDITION_FAILED = "ConditionalCheckFailedException"


class LeaseStore:
    """Conditional writes on one item per completion. `clock` gives epoch seconds (shared across containers)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        history_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ):
        self._client = client
        self._table = table_name
        self._history_ttl_seconds = history_ttl_seconds
        self._clock = clock

    def acquire(self, completion_id: str, owner: str, hold_ms: int) -> LeaseRecord:
        """Take the lease if it is free or expired; raises LeaseHeld with the holder otherwise."""
        now_ms = int(self._clock() * 1000)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_key(completion_id),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until, expiration = :expiration",
                ConditionExpression="attribute_not_exists(lease_owner) OR lease_until < :now",
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(now_ms + hold_ms)},
                    ":now": {"N": str(now_ms)},
                    ":expiration": {"N": str(self._expiration(now_ms))},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                item: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                raise LeaseHeld(
                    item.get("lease_owner", {}).get("S", "unknown"), int(item.get("lease_until", {}).get("N", now_ms))
                ) from None
            raise LeaseStoreUnavailable(f"could not take the completion's lease ({_code(error)})") from None
        except BotoCoreError as error:
            raise LeaseStoreUnavailable(f"could not take the completion's lease ({type(error).__name__})") from None
        attributes = response.get("Attributes", {})
        return LeaseRecord(completion_id, owner, CompletionHistory.from_json(attributes.get("history", {}).get("S")))

    def release(self, lease: LeaseRecord, history: CompletionHistory) -> None:
        """Write the history and give the lease up, if it is still ours: the whole item, without a holder."""
        now_ms = int(self._clock() * 1000)
        item = {
            **_key(lease.completion_id),
            "history": {"S": history.to_json()},
            "expiration": {"N": str(self._expiration(now_ms))},
        }
        self._conditional(
            lambda: self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": lease.owner}},
            ),
            lease,
        )

    def extend(self, lease: LeaseRecord, hold_ms: int) -> None:
        """Keep the lease for `hold_ms` more (a write whose outcome is unknown must settle first)."""
        now_ms = int(self._clock() * 1000)
        self._conditional(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_key(lease.completion_id),
                UpdateExpression="SET lease_until = :until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":until": {"N": str(now_ms + hold_ms)}, ":owner": {"S": lease.owner}},
            ),
            lease,
        )

    @staticmethod
    def _conditional(write: Callable[[], object], lease: LeaseRecord) -> None:
        """Run a write conditioned on our holding the lease, translating its failures."""
        try:
            write()
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                raise LeaseLost(f"the lease on {lease.completion_id} is no longer held by {lease.owner}") from None
            raise LeaseStoreUnavailable(f"could not update the completion's lease ({_code(error)})") from None
        except BotoCoreError as error:
            raise LeaseStoreUnavailable(f"could not update the completion's lease ({type(error).__name__})") from None

    def _expiration(self, now_ms: int) -> int:
        """TTL (epoch seconds): the history must outlive every delivery of any request it orders."""
        return now_ms // 1000 + self._history_ttl_seconds


def _key(completion_id: str) -> dict[str, Any]:
    return {"id": {"S": KEY_PREFIX + completion_id}}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))
