"""Composition: everything that lives as long as the container, built once and wired together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from tagger.adapters.after_write_clients import after_write_client_config
from tagger.adapters.api_key import ApiKeyProvider, secret_region
from tagger.adapters.event_bus import EventBusCheck
from tagger.adapters.lease_store import DynamoDBLeaseStore
from tagger.adapters.openai_api import HttpxCompletionsApi, Pacing, create_http_client
from tagger.adapters.publisher import EventPublisher
from tagger.adapters.request_slots import DynamoRequestSlots
from tagger.adapters.requeue import SqsRequeue
from tagger.adapters.visibility import SqsVisibilityBackoff
from tagger.config import Settings
from tagger.logic.batch import OrderedConcurrentBatchProcessor
from tagger.logic.leased_apply import LeasedApply
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import OutcomeRecorder
from tagger.logic.record_handler import RecordHandler, RequestApplier
from tagger.logic.request_budget import RequestBudget
from tagger.logic.service import TaggerService
from tagger.logic.tagging import Tagger
from tagger.logic.timing import Deadline, RateLimitGate
from tagger.logic.unit_of_work import UnitOfWork, mark_replayed
from tagger.ports import CompletionsApi, DestinationCheck, Requeue, ResultPublisher, VisibilityBackoff

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
        Pacing(gate, budget),
        on_call=recorder.api_call,
    )
    # Calls after the API write (events, the record's settling writes, copies, visibility) make one short
    # attempt each: they must fit in the rest of the invocation (adapters/after_write_clients.py).
    after_write = after_write_client_config(settings.max_concurrency + 2)
    events = session.client("events", config=after_write)
    publisher = EventPublisher(
        events,
        settings.event_bus_name,
        settings.event_source,
        on_call=recorder.put_events_call,
    )
    bounded_dynamodb = session.client("dynamodb", config=after_write)
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
    sqs_factory = _lazy(lambda: session.client("sqs", config=after_write))
    return wire_service(
        settings,
        ServiceParts(
            api=api,
            publisher=publisher,
            persistence=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name, boto3_client=dynamodb),
            leases=leases,
            # A copy may be re-queued after an applied write (its event unpublished): bounded like the calls above.
            requeue=SqsRequeue(sqs_factory),
            visibility=SqsVisibilityBackoff(
                sqs_factory,
                settings.retry_backoff_base_seconds,
                settings.retry_backoff_max_seconds,
            ),
            gate=gate,
            recorder=recorder,
            destination=EventBusCheck(events, settings.event_bus_name),
            on_invocation=publisher.bind_deadline,
        ),
    )


@dataclass(frozen=True)
class ServiceParts:
    """What the service is built from: the adapters behind its ports (real ones in `create_service`, fakes in
    unit tests), its completion leases, and the container-lived state the adapters share with the logic."""

    api: CompletionsApi
    publisher: ResultPublisher
    persistence: BasePersistenceLayer
    # None: per-completion leases are off (`COMPLETION_LEASES=false`); the idempotency store is used instead.
    leases: CompletionLeases | None
    requeue: Requeue
    visibility: VisibilityBackoff
    # The API adapter closes it on a 429, the record handler consults it before a record starts.
    gate: RateLimitGate
    # Counts what adapters and logic see in the invocation under way.
    recorder: OutcomeRecorder
    destination: DestinationCheck | None = None
    # Told each invocation's deadline before its records start (the publisher bounds its calls by it).
    on_invocation: Callable[[Deadline], None] | None = None


def wire_service(settings: Settings, parts: ServiceParts) -> TaggerService:
    """The service's logic, wired to `parts`: the one place that decides how the logic fits together."""
    idempotency_config = IdempotencyConfig(
        expires_after_seconds=settings.idempotency_expiry_seconds,
        hash_function="sha256",
        raise_on_no_idempotency_key=True,
        response_hook=mark_replayed,
    )
    tagger = Tagger(parts.api, on_mismatch=parts.recorder.metadata_mismatch)
    applier: RequestApplier = (
        LeasedApply(parts.leases, tagger, parts.publisher)
        if parts.leases is not None
        else UnitOfWork(tagger, parts.publisher, parts.persistence, idempotency_config)
    )
    return TaggerService(
        settings=settings,
        handler=RecordHandler(applier, parts.publisher, parts.gate, parts.requeue, parts.destination),
        batch_processor=OrderedConcurrentBatchProcessor(settings.max_concurrency, parts.publisher.participant),
        idempotency_config=idempotency_config,
        visibility=parts.visibility,
        recorder=parts.recorder,
        on_invocation=parts.on_invocation,
    )


def _lazy(make: Callable[[], T]) -> Callable[[], T]:
    """One client, made on first use and shared (most invocations never need it)."""
    made: list[T] = []

    def get() -> T:
        if not made:
            made.append(make())
        return made[0]

    return get
