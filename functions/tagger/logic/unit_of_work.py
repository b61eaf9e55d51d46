"""The idempotent unit of work without per-completion leases (`COMPLETION_LEASES=false`): one request's API
update *and* the publishing of its result event, through Powertools' idempotency utility. (With leases, the
completed requests live in the per-completion record instead: `leased_apply.py`.)

Its stored result says whether the event went out: a redelivery of a request whose update succeeded but
whose event was not published publishes it then, with no second API write; a true duplicate does nothing
(README, "Tag requests": Idempotency).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from tagger.errors import ApiKeyUnavailable, CompletionsApiError, PutBack
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.records import Delivery
from tagger.logic.result_details import failed_detail, tagged_detail
from tagger.logic.tagging import Tagger
from tagger.models import ResultDetail, TagRequest
from tagger.ports import ResultPublisher
from tagger.result_events import detail_from_dict
from tagger.telemetry import logger

IDEMPOTENCY_KEY_PREFIX = "completion-tagger"
REPLAYED = "replayed"


def mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    """Idempotency response hook: tells a stored result apart from one just produced."""
    return {**response, REPLAYED: True} if isinstance(response, dict) else response


def publish_or_put_back(publisher: ResultPublisher, detail: ResultDetail) -> None:
    """Publish an event whose record must not end without it: if it cannot go out, the record goes back."""
    if not publisher.publish(detail):
        raise PutBack("upstream_error", "the result event could not be published")


class UnitOfWork:
    """Runs a request's unit once, and settles what a stored result still owes (its event)."""

    def __init__(
        self,
        tagger: Tagger,
        publisher: ResultPublisher,
        persistence: BasePersistenceLayer,
        idempotency_config: IdempotencyConfig,
    ):
        self._tagger = tagger
        self._publisher = publisher
        self._persistence = persistence
        self._apply_once = idempotent_function(
            data_keyword_argument="idempotency_key",
            persistence_store=persistence,
            config=idempotency_config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )(self._apply_and_publish)

    def apply(self, delivery: Delivery, outcomes: InvocationOutcomes) -> ResultDetail | None:
        """The record's result once its event is out, or None for a duplicate that owes nothing (without
        leases there is nothing else to count in `outcomes`: the record handler counts the result).

        Raises PutBack when a later delivery can help.
        """
        return self._conclude(delivery.request, self._run(delivery))

    def _run(self, delivery: Delivery) -> dict[str, Any]:
        """The stored result of the unit: run now, or replayed from an earlier delivery."""
        try:
            stored: dict[str, Any] = self._apply_once(
                idempotency_key=delivery.request.idempotency_payload(), delivery=delivery
            )
        except CompletionsApiError as error:
            raise PutBack.from_api_error(error) from None
        except ApiKeyUnavailable as error:
            raise PutBack.from_key_unavailable(error) from None
        except IdempotencyAlreadyInProgressError:
            raise PutBack("upstream_error", "the same request is being processed by another delivery") from None
        except IdempotencyPersistenceLayerError as error:
            raise PutBack("upstream_error", f"idempotency store unavailable: {error}") from None
        return stored

    def _conclude(self, request: TagRequest, stored: dict[str, Any]) -> ResultDetail | None:
        """A replayed result whose event was lost is published now; a fresh one whose event could not be
        published puts the record back (its redelivery publishes it without a second write)."""
        detail = detail_from_dict(stored["detail"])
        if stored.get(REPLAYED):
            if stored["published"]:
                logger.info("duplicate of a completed request: nothing to do")
                return None
            self._republish(request, detail, stored)
        elif not stored["published"]:
            raise PutBack("upstream_error", "the result event could not be published")
        return detail

    def _apply_and_publish(self, idempotency_key: dict[str, str], delivery: Delivery) -> dict[str, Any]:
        """The idempotent unit. Retryable API errors propagate, so the idempotency record is released."""
        detail: ResultDetail
        try:
            detail = tagged_detail(delivery, self._tagger.apply(delivery))
        except CompletionsApiError as error:
            if error.retryable:
                raise
            detail = failed_detail(delivery, error)
        published = self._publisher.publish(detail)
        return {"detail": detail.model_dump(mode="json"), "published": published}

    def _republish(self, request: TagRequest, detail: ResultDetail, stored: dict[str, Any]) -> None:
        """An earlier delivery did the update but lost the event: publish it now, then remember that."""
        logger.info("publishing the result event of an earlier delivery")
        publish_or_put_back(self._publisher, detail)
        result = {key: value for key, value in stored.items() if key != REPLAYED}
        self._remember(request, {**result, "published": True})

    def _remember(self, request: TagRequest, result: dict[str, Any]) -> None:
        """Overwrite a completed request's stored result (we hold its completion, or it is ours to mark)."""
        try:
            self._persistence.save_success(data=request.idempotency_payload(), result=result)
        except Exception:
            logger.exception("could not update the result in the idempotency store")
