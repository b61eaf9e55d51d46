"""Composition: everything that lives as long as the container, built once and wired together."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from tagger.adapters.api_key import ApiKeyProvider, secret_region
from tagger.adapters.event_bus import EventBusCheck
from tagger.adapters.lease_store import DynamoDBLeaseStore
from tagger.adapters.openai_api import HttpxCompletionsApi, create_http_client
from tagger.adapters.publisher import EventPublisher, events_client_config
from tagger.adapters.request_slots import DynamoRequestSlots
from tagger.adapters.requeue import SqsRequeue
from tagger.adapters.visibility import SqsVisibilityBackoff
from tagger.config import Settings
from tagger.logic.batch import OrderedConcurrentBatchProcessor
from tagger.logic.leased_apply import LeasedApply
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import OutcomeRecorder
from tagger.logic.record_handler import RecordHandler
from tagger.logic.request_budget import RequestBudget
from tagger.logic.service import TaggerService
from tagger.logic.tagging import Tagger
from tagger.logic.timing import RateLimitGate
from tagger.logic.unit_of_work import UnitOfWork, mark_replayed

T = TypeVar("T")


def create_service(settings: Settings, session: boto3.session.Session | None = None) -> TaggerService:
    """Everything that lives as long as the container: clients with pools sized to the concurrency.

    `session` lets a caller observe or fault the AWS calls (botocore event hooks); by default a new one.
    """
    boto_config = Config(
        max_pool_connections=settings.max_concurrency + 2,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
    )
    session = session or boto3.session.Session()
    recorder = OutcomeRecorder()
    dynamodb = session.client("dynamodb", config=boto_config)
    budget = (
        RequestBudget(
            DynamoRequestSlots(dynamodb, settings.idempotency_table_name),
            settings.api_requests_per_second,
            max_chunk=settings.max_concurrency,
        )
        if settings.api_requests_per_second > 0
        else None
    )
    # With a shared budget, one container's 429 holds the whole fleet back.
    gate = RateLimitGate(share=budget.hold_off if budget else None)
    api_key = ApiKeyProvider(
        settings.openai_api_key_secret,
        settings.openai_api_key,
        SecretsProvider(
            boto3_client=session.client(
                "secretsmanager", region_name=secret_region(settings.openai_api_key_secret), config=boto_config
            )
        )
        if settings.openai_api_key_secret
        else None,
    )
    api = HttpxCompletionsApi(
        create_http_client(settings.openai_base_url, settings.max_concurrency, settings.openai_timeout_seconds),
        api_key,
        gate,
        on_call=recorder.api_call,
        budget=budget,
    )
    # Calls after the API write (events, visibility) have short timeouts and bounded attempts: they must fit in
    # the invocation's reserve (README, "What happens to each message").
    after_write_config = events_client_config(settings.max_concurrency + 2)
    events = session.client("events", config=after_write_config)
    publisher = EventPublisher(
        events,
        settings.event_bus_name,
        settings.event_source,
        on_call=recorder.put_events_call,
    )
    # Calls made after an API write must fit in the invocation's rest (logic/leased_apply.py, POST_WRITE_CALL_SECONDS).
    after_write = boto_config.merge(
        Config(connect_timeout=0.5, read_timeout=1.0, retries={"mode": "standard", "max_attempts": 1})
    )
    bounded_dynamodb = session.client("dynamodb", config=after_write)
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name, boto3_client=dynamodb)
    leases = (
        CompletionLeases(
            DynamoDBLeaseStore(
                dynamodb,
                settings.idempotency_table_name,
                settings.idempotency_expiry_seconds,
                bounded_client=bounded_dynamodb,
            ),
            # A write sent just before the invocation ended may still land for about one read timeout.
            margin_seconds=settings.openai_timeout_seconds,
        )
        if settings.completion_leases
        else None
    )
    idempotency_config = IdempotencyConfig(
        expires_after_seconds=settings.idempotency_expiry_seconds,
        hash_function="sha256",
        raise_on_no_idempotency_key=True,
        response_hook=mark_replayed,
    )
    tagger = Tagger(api, on_mismatch=recorder.metadata_mismatch)
    unit = UnitOfWork(tagger, publisher, persistence, idempotency_config)
    sqs_factory = _lazy(lambda: session.client("sqs", config=after_write))
    processor = RecordHandler(
        unit,
        publisher,
        gate,
        LeasedApply(leases, tagger, publisher) if leases else None,
        # A copy may be re-queued after an applied write (its event unpublished): bounded like the calls above.
        SqsRequeue(sqs_factory),
        destination=EventBusCheck(events, settings.event_bus_name),
    )
    return TaggerService(
        settings,
        processor,
        OrderedConcurrentBatchProcessor(settings.max_concurrency, publisher.participant),
        idempotency_config,
        SqsVisibilityBackoff(
            sqs_factory,
            settings.retry_backoff_base_seconds,
            settings.retry_backoff_max_seconds,
        ),
        recorder,
        on_invocation=publisher.bind_deadline,
    )


def _lazy(make: Callable[[], T]) -> Callable[[], T]:
    """One client, made on first use and shared (most invocations never need it)."""
    made: list[T] = []

    def get() -> T:
        if not made:
            made.append(make())
        return made[0]

    return get
