"""The fleet's shared request schedule in DynamoDB (README, "Configuration": `API_REQUESTS_PER_SECOND`).

One item in the idempotency table, under a key of its own (`completion-tagger-rate#openai-api`), holds
`next_free_us`: when the next free request slot begins (epoch microseconds). A reservation is one
conditional UpdateItem: while the schedule is idle (`next_free_us` in the past) a container books from
now; while it is busy, it adds its span to `next_free_us` atomically and gets the old value as its start.
A failed condition returns the item, so a wrong guess costs one more write, never a read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tagger.errors import RequestBudgetUnavailable
from tagger.ports import SlotGrant
from tagger.telemetry import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BUDGET_KEY = "completion-tagger-rate#openai-api"
CONDITION_FAILED = "ConditionalCheckFailedException"
# The item outlives a quiet day, then DynamoDB's TTL removes it; the next request starts a new one.
EXPIRY_SECONDS = 86400
MAX_TRIES = 3


class DynamoRequestSlots:
    """`RequestSlotStore` on one item of the idempotency table. `clock` gives epoch seconds."""

    def __init__(self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time):
        self._client = client
        self._table = table_name
        self._clock = clock
        self._busy_hint = False  # whether the schedule looked busy last time: try that path first

    def reserve(self, span_us: int, horizon_us: int) -> SlotGrant:
        for _ in range(MAX_TRIES):
            now_us = self._now_us()
            old = self._book_busy(now_us, span_us, horizon_us) if self._busy_hint else self._book_idle(now_us, span_us)
            if isinstance(old, SlotGrant):
                return old
            # The condition failed: `old` is the schedule's first free slot as it stands.
            self._busy_hint = old > now_us
            if old - now_us > horizon_us:
                return SlotGrant(start_us=None, next_free_us=old)
        raise RequestBudgetUnavailable("the request budget kept changing under us (too much contention)")

    def hold_off_until(self, until_us: int) -> None:
        """Best effort: if it fails, this container still waits (its own gate); only the others are not told."""
        try:
            self._update(
                "SET next_free_us = :until, expiration = :expiration",
                "attribute_not_exists(next_free_us) OR next_free_us < :until",
                {":until": {"N": str(until_us)}, ":expiration": self._expiration()},
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                logger.warning("could not share the API's back-off with the fleet", extra={"error": _code(error)})
        except BotoCoreError as error:
            logger.warning("could not share the API's back-off with the fleet", extra={"error": type(error).__name__})

    def _book_idle(self, now_us: int, span_us: int) -> SlotGrant | int:
        return self._book(
            "SET next_free_us = :end, expiration = :expiration",
            "attribute_not_exists(next_free_us) OR next_free_us <= :now",
            {":end": {"N": str(now_us + span_us)}, ":now": {"N": str(now_us)}, ":expiration": self._expiration()},
            start_us=now_us,
        )

    def _book_busy(self, now_us: int, span_us: int, horizon_us: int) -> SlotGrant | int:
        return self._book(
            "SET next_free_us = next_free_us + :span, expiration = :expiration",
            "next_free_us > :now AND next_free_us <= :limit",
            {
                ":span": {"N": str(span_us)},
                ":now": {"N": str(now_us)},
                ":limit": {"N": str(now_us + horizon_us)},
                ":expiration": self._expiration(),
            },
            start_us=None,
        )

    def _book(self, update: str, condition: str, values: dict[str, Any], *, start_us: int | None) -> SlotGrant | int:
        """A grant, or the first free slot as it stands when the condition failed."""
        try:
            response = self._update(update, condition, values)
        except ClientError as error:
            if _code(error) == CONDITION_FAILED:
                item: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
                return int(item.get("next_free_us", {}).get("N", 0))
            raise RequestBudgetUnavailable(f"the request budget did not answer ({_code(error)})") from None
        except BotoCoreError as error:
            raise RequestBudgetUnavailable(f"the request budget did not answer ({type(error).__name__})") from None
        if start_us is None:
            start_us = int(response["Attributes"]["next_free_us"]["N"])
        return SlotGrant(start_us=start_us, next_free_us=start_us)

    def _update(self, update: str, condition: str, values: dict[str, Any]) -> Any:
        return self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": BUDGET_KEY}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def _expiration(self) -> dict[str, str]:
        return {"N": str(int(self._clock()) + EXPIRY_SECONDS)}

    def _now_us(self) -> int:
        return round(self._clock() * 1_000_000)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))
