"""Powertools' DynamoDB idempotency store, for use under a completion's lease.

Powertools marks every request "in progress" with a conditional write before running it, so that a twin
delivered at the same time finds the marker and backs off. Under the completion's lease no twin can run
at the same time (a twin is a request for the same completion), so that marker is redundant: this store
looks the request up with a strongly consistent read instead, a fifth of a write's price, and writes only
the completed record. Everything else — keys, hashing, expiry, the completed record's shape, replays —
is Powertools' own.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemAlreadyExistsError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord


class LeasedRequestStore(DynamoDBPersistenceLayer):
    """Looks a request up instead of marking it in progress; see the module docstring."""

    def _put_record(self, data_record: DataRecord) -> None:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._get_key(data_record.idempotency_key), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return
        stored = self._item_to_data_record(item)
        # An in-progress record can only be left over from a crashed invocation (or one that ran without
        # leases): under the lease nothing else is running this request, so it is simply run again.
        if stored.status == STATUS_CONSTANTS["COMPLETED"]:
            raise IdempotencyItemAlreadyExistsError(old_data_record=stored)

    def _delete_record(self, data_record: DataRecord) -> None:
        """A failed request wrote nothing before it ran, so there is nothing to take back."""
