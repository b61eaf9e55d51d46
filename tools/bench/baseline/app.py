"""The straightforward implementation, for comparison only (never deployed).

What a user would write from the Powertools and OpenAI documentation: Powertools' plain `BatchProcessor`
walking the records one by one, the `openai` SDK (default `max_retries`), Powertools idempotency on the
same kind of DynamoDB table, and one `PutEvents` per record. It follows the README on the happy path
(`merge` reads then writes, `replace` writes; a duplicate makes no call and emits no event); it makes no
attempt at the README's outcome table, which the bench does not exercise.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from openai import OpenAI
from pydantic import BaseModel, ConfigDict, Field

MAX_METADATA_KEYS = 16

logger = Logger(service="completion-tagger-baseline")
processor = BatchProcessor(event_type=EventType.SQS)
persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"])
idempotency = IdempotencyConfig(expires_after_seconds=int(os.environ.get("IDEMPOTENCY_EXPIRY_SECONDS", "86400")))
client = OpenAI(base_url=os.environ.get("OPENAI_BASE_URL"), api_key=os.environ["OPENAI_API_KEY"])
events = boto3.client("events")
EVENT_BUS_NAME = os.environ.get("EVENT_BUS_NAME", "default")
EVENT_SOURCE = os.environ.get("EVENT_SOURCE", "completion-tagger")


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    completion_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    metadata: dict[str, str] = Field(max_length=MAX_METADATA_KEYS)
    mode: Literal["merge", "replace"] = "merge"
    remove: list[str] = Field(default_factory=list)
    request_id: str | None = None


@idempotent_function(  # type: ignore[untyped-decorator]  # Powertools' decorator is untyped
    data_keyword_argument="request", persistence_store=persistence, config=idempotency
)
def tag(request: dict[str, Any], request_id: str | None, message_id: str) -> dict[str, Any]:
    """Update one completion and publish its result event; Powertools remembers the result."""
    completion_id = request["completion_id"]
    if request["mode"] == "replace":
        metadata = request["metadata"]
    else:
        current = client.chat.completions.retrieve(completion_id).metadata or {}
        metadata = {**current, **request["metadata"]}
        for key in request["remove"]:
            metadata.pop(key, None)
        if len(metadata) > MAX_METADATA_KEYS:
            raise ValueError(f"metadata: the merge would leave {len(metadata)} keys")
    updated = client.chat.completions.update(completion_id, metadata=metadata)
    detail = {
        "completion_id": completion_id,
        "metadata": dict(updated.metadata or {}),
        "mode": request["mode"],
        "request_id": request_id,
        "message_id": message_id,
    }
    events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": "CompletionTagged",
                "Detail": json.dumps(detail),
                "EventBusName": EVENT_BUS_NAME,
            }
        ]
    )
    return detail


def record_handler(record: SQSRecord) -> dict[str, Any]:
    request = TagRequest.model_validate_json(record.body)
    result: dict[str, Any] = tag(
        request=request.model_dump(include={"completion_id", "mode", "metadata", "remove"}),
        request_id=request.request_id,
        message_id=record.message_id,
    )
    return result


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
