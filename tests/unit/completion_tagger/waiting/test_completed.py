"""`send --wait` asks the idempotency table whether a line without an event was completed: in either shape the
function keeps completed requests (against moto's DynamoDB)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from completion_tagger.waiting.completed import (
    CompletionRecords,
    EitherRecord,
    IdempotencyRecords,
    idempotency_key,
)
from tagger.models import TagRequest

TABLE = "idempotency"
DONE = TagRequest(completion_id="chatcmpl-1", metadata={"eval-set": "v3"})
OTHER = TagRequest(completion_id="chatcmpl-1", metadata={"eval-set": "v4"})


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_the_per_completion_record_knows_its_completed_requests(dynamodb) -> None:  # type: ignore[no-untyped-def]
    completed = {DONE.request_hash(): {"message_id": "m-1", "outcome": "tagged", "published": True, "at": 1}}
    dynamodb.put_item(
        TableName=TABLE,
        Item={"id": {"S": "completion-tagger-completion#chatcmpl-1"}, "completed": {"S": json.dumps(completed)}},
    )
    records = CompletionRecords(dynamodb, TABLE)
    assert records.is_completed(DONE)
    assert not records.is_completed(OTHER)
    assert not records.is_completed(TagRequest(completion_id="chatcmpl-2", metadata={"eval-set": "v3"}))


def test_powertools_records_are_found_by_the_functions_own_key(dynamodb) -> None:  # type: ignore[no-untyped-def]
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": idempotency_key(DONE)}, "status": {"S": "COMPLETED"}})
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": idempotency_key(OTHER)}, "status": {"S": "INPROGRESS"}})
    records = IdempotencyRecords(dynamodb, TABLE)
    assert records.is_completed(DONE)
    assert not records.is_completed(OTHER)  # in progress is not completed


def test_either_shape_is_enough(dynamodb) -> None:  # type: ignore[no-untyped-def]
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": idempotency_key(DONE)}, "status": {"S": "COMPLETED"}})
    either = EitherRecord(CompletionRecords(dynamodb, TABLE), IdempotencyRecords(dynamodb, TABLE))
    assert either.is_completed(DONE)
    assert not either.is_completed(OTHER)
