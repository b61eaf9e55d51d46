"""The record handler: one SQS record from body to outcome, as the README's "What happens to each message"
says. It decides whether a record may start, builds the `Delivery` of its request and hands it to the
unit of work (under its completion's lease when leases are on), counts what became of it, and turns every
failure into a put-back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tagger.errors import EventBusMissing, InvalidTagRequest, PutBack
from tagger.logic.hold_back import HoldBack
from tagger.logic.leased_apply import POST_WRITE_CALL_SECONDS
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.records import Delivery, ParsedRecord
from tagger.logic.timing import Deadline, RateLimitGate
from tagger.logic.unit_of_work import publish_or_put_back
from tagger.models import ResultDetail, TagFailedDetail, TaggedDetail, TagRequest
from tagger.ports import MAX_COPY_GENERATIONS, DestinationCheck, PutBackRecord, Requeue, RequeuedCopy, ResultPublisher
from tagger.telemetry import logger

MAX_COPY_DELAY_SECONDS = 900  # SQS' longest DelaySeconds


@dataclass(frozen=True)
class Invocation:
    """What the records of one invocation share."""

    deadline: Deadline
    outcomes: InvocationOutcomes
    max_receive_count: int
    hold_back: HoldBack = field(default_factory=HoldBack)


class RequestApplier(Protocol):
    """Applies a delivery's request and publishes its result event: `UnitOfWork` without per-completion
    leases, `LeasedApply` with them.

    Returns the record's result once its event is out, or None for a duplicate that owes nothing; raises
    PutBack when a later delivery can help.
    """

    def apply(self, delivery: Delivery, outcomes: InvocationOutcomes) -> ResultDetail | None: ...


class RecordHandler:
    """Handles one record; raises PutBack (so the record is put back) only when a later delivery can help."""

    def __init__(
        self,
        applier: RequestApplier,
        publisher: ResultPublisher,
        gate: RateLimitGate,
        requeue: Requeue | None = None,
        destination: DestinationCheck | None = None,
    ):
        self._applier = applier
        self._publisher = publisher
        self._gate = gate
        self._requeue = requeue
        self._destination = destination

    def handle(self, record: ParsedRecord, invocation: Invocation) -> None:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        is_last = receive_count >= invocation.max_receive_count
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(message_id=record.identity, receive_count=receive_count)
        try:
            invocation.hold_back.check(record.ordering_key)
            self._check_may_start(invocation.deadline)
            request = self._accept(record, invocation)
            if request is not None:
                delivery = Delivery(
                    request=request,
                    message_id=record.identity,
                    order_token=record.order_token,
                    receive_count=receive_count,
                    is_last=is_last,
                    deadline=invocation.deadline,
                )
                self._apply(delivery, invocation.outcomes)
        except Exception as error:
            put_back = error if isinstance(error, PutBack) else _as_put_back(error)
            invocation.hold_back.put_back(record.ordering_key, put_back)
            if is_last and self._requeued_on_last_delivery(record, put_back, invocation):
                invocation.outcomes.count_requeued()
                return
            invocation.outcomes.count_put_back(
                put_back.metric_code,
                PutBackRecord(
                    queue_arn=record.event_source_arn,
                    receipt_handle=record.receipt_handle,
                    receive_count=receive_count,
                    is_last_delivery=is_last,
                    retry_after=put_back.retry_after,
                    longest_backoff=put_back.code == "quota_exceeded",
                ),
            )
            if put_back.code == "unauthorized":
                logger.error("OpenAI rejected the API key (401/403): check the key in the secret; records wait")
            if put_back.code == "quota_exceeded":
                logger.error("OpenAI quota or credit exhausted (429): fix the billing, then redrive; records wait")
            logger.warning(
                "record put back on the queue",
                extra={
                    "code": put_back.code,
                    "cause": put_back.metric_code,
                    "reason": put_back.message,
                    "last_delivery": is_last,
                },
            )
            raise put_back from error

    def _check_may_start(self, deadline: Deadline) -> None:
        if deadline.remaining() <= 0:
            raise PutBack("timeout", "not started: the invocation is about to run out of time")
        if self._destination is not None:
            try:
                self._destination.ensure()
            except EventBusMissing as error:
                # Before any API write: its result event would be accepted by PutEvents and lost.
                raise PutBack("upstream_error", f"not started: {error}", cause="event_bus_missing") from None
        wait = self._gate.wait_left()
        if wait > 0:
            raise PutBack("rate_limited", "not started: the API asked to back off (429)", retry_after=wait)

    def _accept(self, record: ParsedRecord, invocation: Invocation) -> TagRequest | None:
        """The request, or None once a validation failure has been published for it."""
        request = record.request
        if isinstance(request, InvalidTagRequest):
            detail = TagFailedDetail(
                completion_id=request.completion_id,
                request_id=request.request_id,
                message_id=record.identity,
                error={"code": "validation_error", "message": request.message, "retryable": False},
            )
            logger.info("invalid tag request", extra={"error_message": request.message})
            publish_or_put_back(self._publisher, detail)
            invocation.outcomes.count_failed("validation_error")
            return None
        logger.thread_safe_append_keys(completion_id=request.completion_id, request_id=request.request_id)
        return request

    def _apply(self, delivery: Delivery, outcomes: InvocationOutcomes) -> None:
        detail = self._applier.apply(delivery, outcomes)
        if detail is None:
            outcomes.count_duplicate()
        elif isinstance(detail, TaggedDetail):
            outcomes.count_tagged()
        else:
            outcomes.count_failed(detail.error.code)

    def _requeued_on_last_delivery(self, record: ParsedRecord, put_back: PutBack, invocation: Invocation) -> bool:
        """End a last delivery: True when a copy was re-queued (the original then ends), False when the queue
        moves the message to the dead-letter queue next.

        A record that only has to wait goes back as a copy. Otherwise its failure event is published first;
        if that cannot be done, the record goes back as a copy too, so the event is not lost (the copy tries
        the request again, and publishes its own end). Copies are bounded (MAX_COPY_GENERATIONS).
        """
        if put_back.requeue_on_last_delivery and self._send_copy(record, put_back, invocation):
            logger.warning(
                "last delivery of a record that only has to wait: re-queued as a copy that keeps its identity",
                extra={"code": put_back.code, "reason": put_back.message},
            )
            return True
        if self._publish_final_failure(record, put_back):
            return False
        if not put_back.requeue_on_last_delivery and self._send_copy(record, put_back, invocation):
            logger.warning(
                "last delivery: the failure event could not be published; re-queued as a copy that keeps its identity",
                extra={"code": put_back.code, "reason": put_back.message},
            )
            return True
        logger.error("last delivery: the failure event could not be published; the message is dead-lettered")
        return False

    def _publish_final_failure(self, record: ParsedRecord, put_back: PutBack) -> bool:
        """Say that the message goes to the dead-letter queue; False if the event could not be published."""
        completion_id, request_id = record.correlation_ids()
        detail = TagFailedDetail(
            completion_id=completion_id,
            request_id=request_id,
            message_id=record.identity,
            error=put_back.info(),
        )
        return self._publisher.publish(detail)

    def _send_copy(self, record: ParsedRecord, put_back: PutBack, invocation: Invocation) -> bool:
        """Re-queue a copy that keeps the record's identity and order; False if it cannot be sent (no time
        left for the queue URL's lookup and the send, or the send failed)."""
        if self._requeue is None or invocation.deadline.until_end() < 2 * POST_WRITE_CALL_SECONDS:
            return False
        if record.copy_generation >= MAX_COPY_GENERATIONS:
            logger.warning(
                "not re-queued again: the message has been re-queued as a copy as often as it may be",
                extra={"copy_generation": record.copy_generation},
            )
            return False
        return self._requeue.send_copy(
            RequeuedCopy(
                queue_arn=record.event_source_arn,
                body=record.body,
                message_id=record.identity,
                sent_timestamp_ms=record.sent_timestamp_ms,
                attributes=record.raw_event.get("messageAttributes") or {},
                delay_seconds=int(min(put_back.retry_after or 0, MAX_COPY_DELAY_SECONDS)),
                generation=record.copy_generation + 1,
            )
        )


def _as_put_back(error: Exception) -> PutBack:
    """An unexpected exception fails only its own record."""
    logger.exception("unexpected error while processing a record")
    return PutBack("upstream_error", f"unexpected error while processing the record ({type(error).__name__})")
