"""The production wiring's AWS clients: what is called after an API write makes one short attempt."""

from __future__ import annotations

from typing import Any

import boto3

from tagger.adapters.after_write_clients import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from tagger.composition import create_service
from tagger.config import Settings


def clients_made_by_create_service() -> list[tuple[str, Any]]:
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    made: list[tuple[str, Any]] = []
    make_client = session.client

    def client(service_name: str, **kwargs: Any) -> Any:
        created = make_client(service_name, **kwargs)  # type: ignore[call-overload]
        made.append((service_name, created))
        return created

    session.client = client  # type: ignore[method-assign,assignment]
    create_service(Settings(idempotency_table_name="t", openai_api_key="sk-test"), session)
    return made


def is_one_short_attempt(client: Any) -> bool:
    config = client.meta.config
    return bool(
        config.retries.get("total_max_attempts") == 1
        and config.connect_timeout == CONNECT_TIMEOUT_SECONDS
        and config.read_timeout == READ_TIMEOUT_SECONDS
    )


def test_events_and_the_records_settling_writes_make_one_short_attempt() -> None:
    made = clients_made_by_create_service()
    assert [is_one_short_attempt(client) for name, client in made if name == "events"] == [True]
    # Two DynamoDB clients: the lease taken before the write may retry; the one used after it may not.
    assert sorted(is_one_short_attempt(client) for name, client in made if name == "dynamodb") == [False, True]
