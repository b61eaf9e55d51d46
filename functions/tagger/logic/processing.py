"""One SQS record from body to result event, as the README's outcome table says."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from tagger.errors import ApiError, ApiKeyUnavailable, InvalidTagRequest, LeaseLost, LeaseStoreUnavailable, PutBack
from tagger.logic.hold_back import HoldBack
from tagger.logic.key_versions import CompletionHistory, order_token, record_applied
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.records import ParsedRecord
from tagger.logic.tagging import Ordering, Tagger
from tagger.logic.timing import Deadline, RateLimitGate
from tagger.models import (
    ResultDetail,
    TagFailedDetail,
    TaggedDetail,
    TagRequest,
    detail_from_dict,
)
from tagger.ports import LeaseRecord, PutBackRecord, ResultPublisher
from tagger.telemetry import logger

IDEMPOTENCY_KEY_PREFIX = "completion-tagger"
REPLAYED = "replayed"


@dataclass(frozen=True)
class Invocation:
    """What the records of one invocation share."""

    deadline: Deadline
    outcomes: InvocationOutcomes
    max_receive_count: int
    hold_back: HoldBack = field(default_factory=HoldBack)


def mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Idempotency response hook: tells a stored result apart from one just produced."""
    return {**response, REPLAYED: True} if isinstance(response, dict) else response


class RecordProcessor:
    """Validates a record, applies it once (idempotently), and publishes its result event.

    The idempotent unit of work is the API update *and* the publishing of its event. Its stored result
    says whether the event went out: a redelivery of a request whose update succeeded but whose event was
    not published publishes it then, with no second API write; a true duplicate does nothing.
    """

    def __init__(
        self,
        tagger: Tagger,
        publisher: ResultPublisher,
        persistence: BasePersistenceLayer,
        idempotency_config: IdempotencyConfig,
        gate: RateLimitGate,
        leases: CompletionLeases | None = None,
    ):
        self._tagger = tagger
        self._publisher = publisher
        self._persistence = persistence
        self._gate = gate
        self._leases = leases
        self._apply_once = idempotent_function(
            data_keyword_argument="idempotency_key",
            persistence_store=persistence,
            config=idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._apply_and_publish)

    def handle(self, record: ParsedRecord, invocation: Invocation) -> str:
        """Process one record. Raises (so the record is put back) only when a later delivery can help."""
        receive_count = int(record.attributes.approximate_receive_count or 1)
        is_last = receive_count >= invocation.max_receive_count
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(message_id=record.message_id, receive_count=receive_count)
        try:
            invocation.hold_back.check(record.ordering_key)
            self._check_may_start(invocation.deadline)
            request = self._accept(record, invocation)
            if request is None:
                return "invalid"
            if self._leases is None:
                return self._finish(request, self._run_once(record, request, invocation, None), invocation)
            return self._apply_leased(record, request, invocation, self._leases, is_last=is_last)
        except Exception as error:
            put_back = error if isinstance(error, PutBack) else _as_put_back(error)
            invocation.hold_back.put_back(record.ordering_key, put_back)
            if is_last:
                # Last delivery: the queue moves the message to the dead-letter queue next; say so first.
                self._publish_final_failure(record, put_back)
            invocation.outcomes.count_put_back(
                put_back.code,
                PutBackRecord(
                    queue_arn=record.event_source_arn,
                    receipt_handle=record.receipt_handle,
                    receive_count=receive_count,
                    is_last_delivery=is_last,
                    retry_after=put_back.retry_after,
                ),
            )
            if put_back.code == "unauthorized":
                logger.error("OpenAI rejected the API key (401/403): check the key in the secret; records wait")
            logger.warning(
                "record put back on the queue",
                extra={"code": put_back.code, "reason": put_back.message, "last_delivery": is_last},
            )
            raise put_back from error

    def _check_may_start(self, deadline: Deadline) -> None:
        if deadline.remaining() <= 0:
            raise PutBack("timeout", "not started: the invocation is about to run out of time")
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
                message_id=record.message_id,
                error={"code": "validation_error", "message": request.message, "retryable": False},
            )
            logger.info("invalid tag request", extra={"error_message": request.message})
            self._publish_or_put_back(detail)
            invocation.outcomes.count_failed("validation_error")
            return None
        logger.thread_safe_append_keys(completion_id=request.completion_id, request_id=request.request_id)
        return request

    def _apply_leased(
        self, record: SQSRecord, request: TagRequest, invocation: Invocation, leases: CompletionLeases, *, is_last: bool
    ) -> str:
        """Apply the request while holding its completion's lease, then record what it changed and release.

        A write whose outcome is unknown keeps the lease until it has settled, so the next request for the
        completion reads what that write did.
        """
        lease = leases.acquire(request.completion_id, record.message_id, invocation.deadline, invocation.outcomes)
        ordering = Ordering(order_token(_sent_timestamp_ms(record), record.message_id), lease.history)
        try:
            stored = self._run_once(record, request, invocation, ordering)
        except PutBack as put_back:
            if put_back.outcome_unknown:
                self._keep_until_settled(leases, lease, put_back.retry_after or 0.0)
            else:
                self._release(leases, lease, lease.history, must_record=False)
            raise
        except BaseException:
            self._release(leases, lease, lease.history, must_record=False)
            raise
        history = lease.history
        detail = detail_from_dict(stored["detail"])
        if isinstance(detail, TaggedDetail):
            history = record_applied(request, ordering.token, history)
            invocation.outcomes.count_superseded(0 if stored.get(REPLAYED) else len(detail.superseded or []))
        if not stored.get(REPLAYED):
            history = replace(history, last_completed=record.message_id)
        self._release(leases, lease, history, must_record=history != lease.history and not is_last)
        return self._finish(request, stored, invocation)

    def _run_once(
        self, record: SQSRecord, request: TagRequest, invocation: Invocation, ordering: Ordering | None
    ) -> dict[str, Any]:
        """The stored result of the idempotent unit: run now, or replayed from an earlier delivery.

        With leases, a replayed result is a duplicate only when it is this very message again, or when nothing
        has been completed on the completion since (and it left no key to a newer request); otherwise the same
        content arrived as a new intent (approve → reject → approve) and is applied again.
        """
        redelivered = int(record.attributes.approximate_receive_count or 1) > 1
        arguments: dict[str, Any] = {
            "request": request,
            "message_id": record.message_id,
            "deadline": invocation.deadline,
            "redelivered": redelivered,
            "ordering": ordering,
        }
        try:
            stored: dict[str, Any] = self._apply_once(idempotency_key=request.idempotency_payload(), **arguments)
            if stored.get(REPLAYED) and ordering is not None and _is_new_intent(stored, record, ordering.history):
                logger.info("same content as an earlier request, but the completion changed since: applying again")
                stored = self._apply_and_publish(request.idempotency_payload(), **arguments)
                self._remember(request, stored)
        except ApiError as error:
            raise PutBack.from_api_error(error) from None
        except ApiKeyUnavailable as error:
            # Our side's fault, usually passing (a secret mid-rotation): the record waits, nothing is lost.
            raise PutBack("upstream_error", f"the API key is unavailable: {error}") from None
        except IdempotencyAlreadyInProgressError:
            raise PutBack("upstream_error", "the same request is being processed by another delivery") from None
        except IdempotencyPersistenceLayerError as error:
            raise PutBack("upstream_error", f"idempotency store unavailable: {error}") from None
        return stored

    @staticmethod
    def _keep_until_settled(leases: CompletionLeases, lease: LeaseRecord, settle_seconds: float) -> None:
        try:
            leases.store.extend(lease, int(settle_seconds * 1000))
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.warning(
                "could not keep the lease while a write settles; it expires by itself", extra={"error": str(error)}
            )

    @staticmethod
    def _release(
        leases: CompletionLeases, lease: LeaseRecord, history: CompletionHistory, *, must_record: bool
    ) -> None:
        """Write the history and release. If what was applied cannot be recorded, the record goes back: its
        redelivery is a duplicate that records it then."""
        try:
            leases.store.release(lease, history)
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.error("could not record the request on its completion's lease", extra={"error": str(error)})
            if must_record:
                raise PutBack("upstream_error", f"the request was applied but not recorded: {error}") from None

    def _finish(self, request: TagRequest, stored: dict[str, Any], invocation: Invocation) -> str:
        detail = detail_from_dict(stored["detail"])
        if stored.get(REPLAYED):
            if stored["published"]:
                invocation.outcomes.count_duplicate()
                logger.info("duplicate of a completed request: nothing to do")
                return "duplicate"
            self._republish(request, detail, stored)
        elif not stored["published"]:
            raise PutBack("upstream_error", "the result event could not be published")
        if isinstance(detail, TaggedDetail):
            invocation.outcomes.count_tagged()
            return "tagged"
        invocation.outcomes.count_failed(detail.error.code)
        return "failed"

    def _apply_and_publish(
        self,
        idempotency_key: dict[str, str],
        request: TagRequest,
        message_id: str,
        deadline: Deadline,
        redelivered: bool,
        ordering: Ordering | None,
    ) -> dict[str, Any]:
        """The idempotent unit. Retryable API errors propagate, so the idempotency record is released."""
        detail: ResultDetail
        try:
            applied = self._tagger.apply(request, deadline, redelivered=redelivered, ordering=ordering)
            detail = TaggedDetail(
                completion_id=request.completion_id,
                metadata=applied.metadata,
                mode=request.mode,
                request_id=request.request_id,
                message_id=message_id,
                superseded=applied.superseded or None,
            )
        except ApiError as error:
            if error.retryable:
                raise
            detail = TagFailedDetail(
                completion_id=request.completion_id,
                request_id=request.request_id,
                message_id=message_id,
                error=error.info(),
            )
        published = self._publisher.publish(detail)
        return {"detail": detail.model_dump(mode="json"), "published": published}

    def _republish(self, request: TagRequest, detail: ResultDetail, stored: dict[str, Any]) -> None:
        """An earlier delivery did the update but lost the event: publish it now, then remember that."""
        logger.info("publishing the result event of an earlier delivery")
        self._publish_or_put_back(detail)
        result = {key: value for key, value in stored.items() if key != REPLAYED}
        self._remember(request, {**result, "published": True})

    def _remember(self, request: TagRequest, result: dict[str, Any]) -> None:
        """Overwrite a completed request's stored result (we hold its completion, or it is ours to mark)."""
        try:
            self._persistence.save_success(data=request.idempotency_payload(), result=result)
        except Exception:
            logger.exception("could not update the result in the idempotency store")

    def _publish_or_put_back(self, detail: ResultDetail) -> None:
        if not self._publisher.publish(detail):
            raise PutBack("upstream_error", "the result event could not be published")

    def _publish_final_failure(self, record: ParsedRecord, put_back: PutBack) -> None:
        completion_id, request_id = record.correlation_ids()
        detail = TagFailedDetail(
            completion_id=completion_id,
            request_id=request_id,
            message_id=record.message_id,
            error=put_back.info(),
        )
        if not self._publisher.publish(detail):
            logger.error("last delivery: the failure event could not be published; the message is dead-lettered")


def _is_new_intent(stored: dict[str, Any], record: SQSRecord, history: CompletionHistory) -> bool:
    """Whether a completed request's content, arriving again, must be applied again (see `_run_once`)."""
    first_message = stored["detail"].get("message_id")
    if first_message == record.message_id:
        return False
    return history.last_completed != first_message or bool(stored["detail"].get("superseded"))


def _sent_timestamp_ms(record: SQSRecord) -> int:
    """SQS's SentTimestamp orders requests; a record without one (a hand-made event) counts as sent now."""
    sent = record.attributes.sent_timestamp
    return int(sent) if sent else int(time.time() * 1000)


def _as_put_back(error: Exception) -> PutBack:
    """An unexpected exception fails only its own record."""
    logger.exception("unexpected error while processing a record")
    return PutBack("upstream_error", f"unexpected error while processing the record ({type(error).__name__})")
