"""One SQS record from body to result event, as the contract's outcome table (§5) says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from tagger.api_errors import ApiError
from tagger.models import (
    ResultDetail,
    TagFailedDetail,
    TaggedDetail,
    TagRequest,
    detail_from_dict,
)
from tagger.outcomes import InvocationOutcomes, PutBack, PutBackRecord
from tagger.parsing import InvalidTagRequest, ordering_key, parse_tag_request
from tagger.publisher import EventPublisher
from tagger.tagging import Tagger
from tagger.telemetry import logger
from tagger.timing import Deadline, RateLimitGate

IDEMPOTENCY_KEY_PREFIX = "completion-tagger"
REPLAYED = "replayed"


@dataclass(frozen=True)
class Invocation:
    """What the records of one invocation share."""

    deadline: Deadline
    outcomes: InvocationOutcomes
    max_receive_count: int
    # Completions with a record put back in this batch, and why: their later records wait behind it.
    held_back: dict[str, PutBack] = field(default_factory=dict)


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
        publisher: EventPublisher,
        persistence: BasePersistenceLayer,
        idempotency_config: IdempotencyConfig,
        gate: RateLimitGate,
    ):
        self._tagger = tagger
        self._publisher = publisher
        self._persistence = persistence
        self._gate = gate
        self._apply_once = idempotent_function(
            data_keyword_argument="idempotency_key",
            persistence_store=persistence,
            config=idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._apply_and_publish)

    def handle(self, record: SQSRecord, invocation: Invocation) -> str:
        """Process one record. Raises (so the record is put back) only when a later delivery can help."""
        receive_count = int(record.attributes.approximate_receive_count or 1)
        is_last = receive_count >= invocation.max_receive_count
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(message_id=record.message_id, receive_count=receive_count)
        request: TagRequest | None = None
        try:
            if invocation.held_back:  # rare: only then is the body read for its completion up front
                self._check_held_back(invocation, ordering_key(record.body, record.message_id))
            self._check_may_start(invocation.deadline)
            request = self._parse(record, invocation)
            if request is None:
                return "invalid"
            return self._apply(record, request, invocation, redelivered=receive_count > 1)
        except Exception as error:
            put_back = error if isinstance(error, PutBack) else _as_put_back(error)
            invocation.held_back.setdefault(ordering_key(record.body, record.message_id), put_back)
            if is_last:
                # Last delivery: the queue moves the message to the dead-letter queue next; say so first.
                self._publish_final_failure(record, request, put_back)
            invocation.outcomes.count_put_back(
                put_back.code,
                PutBackRecord(
                    queue_arn=record.event_source_arn,
                    receipt_handle=record.receipt_handle,
                    receive_count=receive_count,
                    is_last_delivery=is_last,
                    delay=put_back.delay,
                ),
            )
            if put_back.code == "unauthorized":
                logger.error("OpenAI rejected the API key (401/403): check the key in the secret; records wait")
            logger.warning(
                "record put back on the queue",
                extra={"code": put_back.code, "reason": put_back.message, "last_delivery": is_last},
            )
            raise put_back from error

    @staticmethod
    def _check_held_back(invocation: Invocation, chain: str) -> None:
        """Keep batch order per completion: once a record goes back, the later ones go back behind it."""
        earlier = invocation.held_back.get(chain)
        if earlier is not None:
            raise PutBack(
                earlier.code,
                "not started: an earlier request for this completion in the batch was put back",
                status=earlier.status,
                delay=earlier.delay,
            )

    def _check_may_start(self, deadline: Deadline) -> None:
        if deadline.remaining() <= 0:
            raise PutBack("timeout", "not started: the invocation is about to run out of time")
        wait = self._gate.wait_left()
        if wait > 0:
            raise PutBack("rate_limited", "not started: the API asked to back off (429)", delay=wait)

    def _parse(self, record: SQSRecord, invocation: Invocation) -> TagRequest | None:
        """The request, or None once a validation failure has been published for it."""
        try:
            request = parse_tag_request(record.body)
        except InvalidTagRequest as invalid:
            detail = TagFailedDetail(
                completion_id=invalid.completion_id,
                request_id=invalid.request_id,
                message_id=record.message_id,
                error={"code": "validation_error", "message": invalid.message, "retryable": False},
            )
            logger.info("invalid tag request", extra={"error_message": invalid.message})
            self._publish_or_put_back(detail)
            invocation.outcomes.count_failed("validation_error")
            return None
        logger.thread_safe_append_keys(completion_id=request.completion_id, request_id=request.request_id)
        return request

    def _apply(self, record: SQSRecord, request: TagRequest, invocation: Invocation, *, redelivered: bool) -> str:
        try:
            stored = self._apply_once(
                idempotency_key=request.idempotency_payload(),
                request=request,
                message_id=record.message_id,
                deadline=invocation.deadline,
                redelivered=redelivered,
            )
        except ApiError as error:
            raise PutBack(error.code, error.message, status=error.status, delay=error.retry_after) from None
        except IdempotencyAlreadyInProgressError:
            raise PutBack("upstream_error", "the same request is being processed by another delivery") from None
        except IdempotencyPersistenceLayerError as error:
            raise PutBack("upstream_error", f"idempotency store unavailable: {error}") from None

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
    ) -> dict[str, Any]:
        """The idempotent unit. Retryable API errors propagate, so the idempotency record is released."""
        detail: ResultDetail
        try:
            metadata = self._tagger.apply(request, deadline, redelivered=redelivered)
            detail = TaggedDetail(
                completion_id=request.completion_id,
                metadata=metadata,
                mode=request.mode,
                request_id=request.request_id,
                message_id=message_id,
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
        try:
            self._persistence.save_success(data=request.idempotency_payload(), result={**result, "published": True})
        except Exception:
            logger.exception("could not mark the republished event in the idempotency store")

    def _publish_or_put_back(self, detail: ResultDetail) -> None:
        if not self._publisher.publish(detail):
            raise PutBack("upstream_error", "the result event could not be published")

    def _publish_final_failure(self, record: SQSRecord, request: TagRequest | None, put_back: PutBack) -> None:
        completion_id, request_id = _correlation_ids(record, request)
        detail = TagFailedDetail(
            completion_id=completion_id,
            request_id=request_id,
            message_id=record.message_id,
            error=put_back.info(),
        )
        if not self._publisher.publish(detail):
            logger.error("last delivery: the failure event could not be published; the message is dead-lettered")


def _as_put_back(error: Exception) -> PutBack:
    """An unexpected exception fails only its own record."""
    logger.exception("unexpected error while processing a record")
    return PutBack("upstream_error", f"unexpected error while processing the record ({type(error).__name__})")


def _correlation_ids(record: SQSRecord, request: TagRequest | None) -> tuple[str | None, str | None]:
    """Completion and request ids for a failure event, read from the body if it was not parsed yet."""
    if request is None:
        try:
            request = parse_tag_request(record.body)
        except InvalidTagRequest as invalid:
            return invalid.completion_id, invalid.request_id
    return request.completion_id, request.request_id
