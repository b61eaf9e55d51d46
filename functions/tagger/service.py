"""Composition and the per-invocation flow: build the parts once per container, run each batch."""

from __future__ import annotations

from functools import partial
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from tagger.api_key import ApiKeyProvider
from tagger.batch import OrderedConcurrentBatchProcessor
from tagger.config import Settings
from tagger.lease_store import LeaseStore
from tagger.leases import CompletionLeases
from tagger.openai_client import CompletionsApi, create_http_client
from tagger.outcomes import InvocationOutcomes, OutcomeRecorder
from tagger.processing import Invocation, RecordProcessor, mark_replayed
from tagger.publisher import EventPublisher
from tagger.request_store import LeasedRequestStore
from tagger.tagging import Tagger
from tagger.timing import Deadline, RateLimitGate
from tagger.visibility import VisibilityBackoff


class TaggerService:
    """Runs one SQS batch through the record processor and reports it."""

    def __init__(
        self,
        settings: Settings,
        processor: RecordProcessor,
        batch_processor: OrderedConcurrentBatchProcessor,
        idempotency_config: IdempotencyConfig,
        visibility: VisibilityBackoff,
        recorder: OutcomeRecorder,
    ):
        self._settings = settings
        self._processor = processor
        self._batch_processor = batch_processor
        self._idempotency_config = idempotency_config
        self._visibility = visibility
        self._recorder = recorder

    def handle(self, event: dict[str, Any], context: LambdaContext, metrics: Metrics) -> PartialItemFailureResponse:
        self._idempotency_config.register_lambda_context(context)
        outcomes = self._recorder.begin()
        invocation = Invocation(
            deadline=Deadline(context.get_remaining_time_in_millis, self._settings.time_reserve_millis),
            outcomes=outcomes,
            max_receive_count=self._settings.max_receive_count,
        )
        response = process_partial_response(
            event=event,
            record_handler=partial(self._processor.handle, invocation=invocation),
            processor=self._batch_processor,
            context=context,
        )
        self._visibility.apply(outcomes.put_back_records)
        emit_metrics(metrics, outcomes)
        return response


def emit_metrics(metrics: Metrics, outcomes: InvocationOutcomes) -> None:
    """Metrics are added here, on the handler's thread, from the invocation's thread-safe tally."""
    metrics.add_metric(name="Tagged", unit=MetricUnit.Count, value=outcomes.tagged)
    metrics.add_metric(name="Duplicates", unit=MetricUnit.Count, value=outcomes.duplicates)
    metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=sum(outcomes.failed.values()))
    metrics.add_metric(name="PutBack", unit=MetricUnit.Count, value=sum(outcomes.put_back.values()))
    for code, count in sorted((outcomes.failed + outcomes.put_back).items()):
        metrics.add_metric(name=f"Error_{code}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=outcomes.api_calls)
    metrics.add_metric(name="PutEventsCalls", unit=MetricUnit.Count, value=outcomes.put_events_calls)
    for latency in outcomes.api_latencies_ms[:100]:  # EMF takes at most 100 values per metric
        metrics.add_metric(name="ApiLatency", unit=MetricUnit.Milliseconds, value=latency)
    metrics.add_metric(name="LeaseWaits", unit=MetricUnit.Count, value=len(outcomes.lease_wait_ms))
    for waited in outcomes.lease_wait_ms[:100]:
        metrics.add_metric(name="LeaseWaitTime", unit=MetricUnit.Milliseconds, value=waited)
    metrics.add_metric(name="LeaseContention", unit=MetricUnit.Count, value=outcomes.lease_contention)
    metrics.add_metric(name="SupersededKeys", unit=MetricUnit.Count, value=outcomes.superseded_keys)


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
    gate = RateLimitGate()
    api_key = ApiKeyProvider(
        settings.openai_api_key_secret,
        settings.openai_api_key,
        SecretsProvider(boto_config=boto_config, boto3_session=session) if settings.openai_api_key_secret else None,
    )
    api = CompletionsApi(
        create_http_client(settings.openai_base_url, settings.max_concurrency, settings.openai_timeout_seconds),
        api_key,
        gate,
        on_call=recorder.api_call,
    )
    publisher = EventPublisher(
        session.client("events", config=boto_config),
        settings.event_bus_name,
        settings.event_source,
        on_call=recorder.put_events_call,
    )
    dynamodb = session.client("dynamodb", config=boto_config)
    store_type = LeasedRequestStore if settings.completion_leases else DynamoDBPersistenceLayer
    persistence = store_type(table_name=settings.idempotency_table_name, boto3_client=dynamodb)
    leases = (
        CompletionLeases(
            LeaseStore(dynamodb, settings.idempotency_table_name, settings.idempotency_expiry_seconds),
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
    processor = RecordProcessor(Tagger(api), publisher, persistence, idempotency_config, gate, leases)
    return TaggerService(
        settings,
        processor,
        OrderedConcurrentBatchProcessor(settings.max_concurrency, publisher.participant),
        idempotency_config,
        VisibilityBackoff(
            lambda: session.client("sqs", config=boto_config),
            settings.retry_backoff_base_seconds,
            settings.retry_backoff_max_seconds,
        ),
        recorder,
    )
