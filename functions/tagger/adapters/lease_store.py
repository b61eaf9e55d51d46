"""The per-completion record in DynamoDB: a lease taken and released with conditional writes, the key history,
the requests completed on the completion, and the request in flight.

It lives in the idempotency table, under a key of its own (`completion-tagger-completion#<completion_id>`), so
the function needs no second table. Attributes: `lease_owner`, `lease_until` (epoch ms), `history`,
`completed` and `in_flight` (JSON strings, see `logic/completion_record.py`), `expiration` (TTL). Taking the
lease records the request in flight and reads the record in the same round trip (UpdateItem returning the
item); releasing it writes the outcome back and clears the entry in flight (one PutItem), on condition that
the lease is still ours. A new request costs these two requests and no read (docs/design.md, "Concurrency
and ordering").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tagger.errors import LeaseHeld, LeaseLost, LeaseStoreUnavailable
from tagger.logic.completion_record import (
    CompletedRequest,
    InFlight,
    completed_from_json,
    completed_to_json,
    prune,
)
from tagger.logic.key_versions import CompletionHistory
from tagger.ports import LeaseRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "completion-tagger-completion#"
CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoDBLeaseStore:
    """Conditional writes on one item per completion. `clock` gives epoch seconds (shared across containers).

    `bounded_client` makes the calls that come after an API write (release, extend): a client with short
    timeouts and few attempts, so that they fit in what is left of the invocation.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        history_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        bounded_client: DynamoDBClient | None = None,
    ):
        self._client = client
        self._bounded_client = bounded_client or client
        self._table = table_name
        self._history_ttl_seconds = history_ttl_seconds
        self._clock = clock

    def acquire(self, completion_id: str, owner: str, hold_ms: int, intent: InFlight | None = None) -> LeaseRecord:
        """Take the lease if it is free or expired, and record `intent` as in flight unless an entry is there
        already; raises LeaseHeld with the holder otherwise. One UpdateItem, which returns the record."""
        now_ms = int(self._clock() * 1000)
        values: dict[str, Any] = {
            ":owner": {"S": owner},
            ":until": {"N": str(now_ms + hold_ms)},
            ":now": {"N": str(now_ms)},
            ":expiration": {"N": str(self._expiration(now_ms))},
        }
        update = "SET lease_owner = :owner, lease_until = :until, expiration = :expiration"
        if intent is not None:
            update += ", in_flight = if_not_exists(in_flight, :intent)"
            values[":intent"] = {"S": intent.to_json()}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=_key(completion_id),
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(lease_owner) OR lease_until < :now",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                item: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                holder = item.get("lease_owner", {}).get("S", "unknown")
                if holder == owner:
                    # botocore retried a call whose first attempt had taken the lease: it is ours.
                    return _lease_record(completion_id, owner, item)
                raise LeaseHeld(holder, int(item.get("lease_until", {}).get("N", now_ms))) from None
            raise LeaseStoreUnavailable(f"could not take the completion's lease ({_code(error)})") from None
        except BotoCoreError as error:
            raise LeaseStoreUnavailable(f"could not take the completion's lease ({type(error).__name__})") from None
        return _lease_record(completion_id, owner, response.get("Attributes", {}))

    def save(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest],
        in_flight: InFlight | None,
    ) -> None:
        """Write a settled record and keep the lease (the recovery path: an entry in flight was settled)."""
        now_ms = int(self._clock() * 1000)
        values: dict[str, Any] = {
            ":owner": {"S": lease.owner},
            ":history": {"S": history.to_json()},
            ":completed": {"S": self._completed_json(completed, now_ms)},
        }
        update = "SET history = :history, completed = :completed"
        if in_flight is None:
            update += " REMOVE in_flight"
        else:
            update = update.replace("SET ", "SET in_flight = :in_flight, ")
            values[":in_flight"] = {"S": in_flight.to_json()}
        self._conditional(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_key(lease.completion_id),
                UpdateExpression=update,
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues=values,
            ),
            lease,
        )

    def release(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest] | None = None,
        keep_in_flight: InFlight | None = None,
    ) -> None:
        """Write the outcome and give the lease up, if it is still ours: the whole item, without a holder and
        without an entry in flight (but `keep_in_flight`, an unsettled one). One conditional PutItem."""
        now_ms = int(self._clock() * 1000)
        item = {
            **_key(lease.completion_id),
            "history": {"S": history.to_json()},
            "completed": {"S": self._completed_json(lease.completed if completed is None else completed, now_ms)},
            "expiration": {"N": str(self._expiration(now_ms))},
        }
        if keep_in_flight is not None:
            item["in_flight"] = {"S": keep_in_flight.to_json()}
        self._conditional(
            lambda: self._bounded_client.put_item(
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
            lambda: self._bounded_client.update_item(
                TableName=self._table,
                Key=_key(lease.completion_id),
                UpdateExpression="SET lease_until = :until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":until": {"N": str(now_ms + hold_ms)}, ":owner": {"S": lease.owner}},
            ),
            lease,
        )

    def _completed_json(self, completed: Mapping[str, CompletedRequest], now_ms: int) -> str:
        return completed_to_json(prune(completed, now_ms // 1000, self._history_ttl_seconds))

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
        """TTL (epoch seconds): the record must outlive every delivery of any request it orders."""
        return now_ms // 1000 + self._history_ttl_seconds


def _lease_record(completion_id: str, owner: str, attributes: Mapping[str, Any]) -> LeaseRecord:
    return LeaseRecord(
        completion_id,
        owner,
        CompletionHistory.from_json(attributes.get("history", {}).get("S")),
        completed_from_json(attributes.get("completed", {}).get("S")),
        InFlight.from_json(attributes.get("in_flight", {}).get("S")),
    )


def _key(completion_id: str) -> dict[str, Any]:
    return {"id": {"S": KEY_PREFIX + completion_id}}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))
