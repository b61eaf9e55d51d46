"""One invocation: run the batch through the record handler, back off what was put back, report it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagger.config import Settings
from tagger.logic.batch import OrderedConcurrentBatchProcessor
from tagger.logic.outcomes import InvocationOutcomes, OutcomeRecorder
from tagger.logic.record_handler import Invocation, RecordHandler
from tagger.logic.timing import Deadline
from tagger.ports import VisibilityBackoff


@dataclass(frozen=True)
class TaggerService:
    """Runs one SQS batch through the record handler and reports it."""

    settings: Settings
    handler: RecordHandler
    batch_processor: OrderedConcurrentBatchProcessor
    idempotency_config: IdempotencyConfig
    visibility: VisibilityBackoff
    recorder: OutcomeRecorder
    # Told each invocation's deadline before its records start (the publisher bounds its calls by it).
    on_invocation: Callable[[Deadline], None] | None = None

    def handle(self, event: dict[str, Any], context: LambdaContext, metrics: Metrics) -> PartialItemFailureResponse:
        self.idempotency_config.register_lambda_context(context)
        outcomes = self.recorder.begin()
        deadline = Deadline(context.get_remaining_time_in_millis, self.settings.time_reserve_millis)
        if self.on_invocation:
            self.on_invocation(deadline)
        invocation = Invocation(
            deadline=deadline,
            outcomes=outcomes,
            max_receive_count=self.settings.max_receive_count,
        )
        response = process_partial_response(
            event=event,
            record_handler=partial(self.handler.handle, invocation=invocation),
            processor=self.batch_processor,
            context=context,
        )
        self.visibility.apply(outcomes.put_back_records)
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
    metrics.add_metric(name="UnsettledWritesSettled", unit=MetricUnit.Count, value=outcomes.unsettled_settled)
    metrics.add_metric(name="RequeuedCopies", unit=MetricUnit.Count, value=outcomes.requeued_copies)
    metrics.add_metric(name="MetadataMismatch", unit=MetricUnit.Count, value=outcomes.metadata_mismatches)
