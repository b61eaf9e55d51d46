"""Applying a request under its completion's lease (the README's "Tag requests", and docs/design.md,
"Concurrency and ordering", "Crash safety").

1. Take the lease: one UpdateItem that also records this request as *in flight* (what it will write) and
   returns the completion's record: key history, completed requests, and any entry in flight.
2. An entry in flight left by a holder that never settled it (it crashed, or its release failed) is settled
   first: the completion is read, and the entry is recorded as applied (with its event unpublished) if the
   completion shows its values, else dropped. The settled record is written back before anything is decided.
3. A completed entry for the same request hash is a duplicate when the rule says so (`is_duplicate`); its
   own message publishes its event if that never went out.
4. Otherwise the request is applied (newest intent wins, key by key) and its event published; then one
   conditional write records the outcome (history, completed entry, last completed) and clears the entry in
   flight. If the event went out the message ends even when that write fails: the entry in flight stays,
   and the next request settles it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from tagger.errors import ApiKeyUnavailable, CompletionsApiError, LeaseLost, LeaseStoreUnavailable, PutBack
from tagger.logic.completion_record import (
    CompletedRequest,
    CompletionState,
    InFlight,
    Outcome,
    is_duplicate,
    settled_detail,
    superseded_keys,
    was_applied,
)
from tagger.logic.key_versions import CompletionHistory, record_applied
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.records import Delivery
from tagger.logic.result_details import failed_detail, tagged_detail
from tagger.logic.tagging import Ordering, Tagger
from tagger.logic.timing import Deadline
from tagger.models import ResultDetail
from tagger.ports import LeaseRecord, ResultPublisher
from tagger.result_events import detail_from_dict
from tagger.telemetry import logger

# Time one call after the API write may take (the lease store's bounded client: 0.5 s to connect, 1 s to
# read, one attempt). With less of the invocation left, the call is not made: what it would have written is
# settled by the next request for the completion.
POST_WRITE_CALL_SECONDS = 1.5


class LeasedApply:
    """Runs a request while holding its completion's lease, so one request at a time changes it; see the
    module docstring for the steps and what each failure leaves behind."""

    def __init__(
        self,
        leases: CompletionLeases,
        tagger: Tagger,
        publisher: ResultPublisher,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._leases = leases
        self._tagger = tagger
        self._publisher = publisher
        self._wall_clock = wall_clock

    def apply(self, delivery: Delivery, outcomes: InvocationOutcomes) -> ResultDetail | None:
        """The record's result once its event is out, or None for a duplicate that owes nothing.

        Raises PutBack when a later delivery can help.
        """
        request, deadline = delivery.request, delivery.deadline
        lease = self._leases.acquire(
            request.completion_id, delivery.message_id, deadline, outcomes, lambda owner: _intent(delivery, owner)
        )
        mine = _intent(delivery, lease.owner)
        state = CompletionState(lease.history, lease.completed, lease.in_flight)
        if state.in_flight is not None and state.in_flight.owner != lease.owner:
            state = self._settle(lease, state, state.in_flight, delivery, outcomes)
        entry = state.completed.get(mine.request_hash)
        if entry is not None and is_duplicate(entry, delivery.message_id, state.history):
            if entry.outcome == "tagged":
                # Another message with the same content, nothing completed since: its values are on the
                # completion, so it counts as applied in its own order (a newer one moves the keys' versions).
                state = replace(state, history=record_applied(request, mine.token, state.history))
            return self._duplicate(lease, state, mine.request_hash, entry, deadline)
        return self._apply(lease, state, mine, delivery, outcomes)

    def _settle(
        self,
        lease: LeaseRecord,
        state: CompletionState,
        left: InFlight,
        delivery: Delivery,
        outcomes: InvocationOutcomes,
    ) -> CompletionState:
        """Settle `left`, an entry in flight that its holder never settled, write the result back with this
        request in flight instead, and return the record as it now stands."""
        deadline, mine = delivery.deadline, _intent(delivery, lease.owner)
        history, completed = state.history, dict(state.completed)
        try:
            current: dict[str, str] | None = self._tagger.read(lease.completion_id, deadline)
        except CompletionsApiError as error:
            if error.retryable:
                self._release(lease, history, completed, deadline, keep_in_flight=left)
                raise PutBack.from_api_error(error) from None
            current = None  # the completion cannot be read (gone, never stored): nothing was applied to it
        except ApiKeyUnavailable as error:
            self._release(lease, history, completed, deadline, keep_in_flight=left)
            raise PutBack.from_key_unavailable(error) from None
        earlier = completed.get(left.request_hash)
        # A holder that found its request completed was a duplicate and wrote nothing: the same record tells
        # the settler so (it is the record that holder read).
        was_duplicate = earlier is not None and is_duplicate(earlier, left.message_id, history)
        applied = current is not None and not was_duplicate and was_applied(left, history, current)
        if was_duplicate and earlier is not None and earlier.outcome == "tagged":
            # What that holder's release would have written: its own order on the keys (see `apply`).
            history = record_applied(left.as_request(lease.completion_id), left.token, history)
        if current is not None and applied:
            superseded = superseded_keys(left, history, current)
            detail = settled_detail(left, lease.completion_id, current, superseded)
            completed[left.request_hash] = CompletedRequest(
                left.message_id,
                "tagged",
                published=False,
                at=int(self._wall_clock()),
                superseded=bool(superseded),
                detail=detail.model_dump(mode="json"),
            )
            history = replace(
                record_applied(left.as_request(lease.completion_id), left.token, history),
                last_completed=left.message_id,
            )
        outcomes.count_settled()
        logger.warning(
            "settled a write its holder left unsettled",
            extra={"unsettled_message_id": left.message_id, "applied": applied, "holder": left.owner},
        )
        try:
            self._leases.store.save(lease, history, completed, mine)
        except (LeaseLost, LeaseStoreUnavailable) as error:
            self._release(lease, state.history, state.completed, deadline, keep_in_flight=left)
            raise PutBack("upstream_error", f"could not record a settled write: {error}") from None
        return CompletionState(history, completed, mine)

    def _duplicate(
        self,
        lease: LeaseRecord,
        state: CompletionState,
        request_hash: str,
        entry: CompletedRequest,
        deadline: Deadline,
    ) -> ResultDetail | None:
        """A duplicate owes nothing, except the completed request's event when that never went out (it is
        published as it was built, with the completed message's id, so consumers see it once)."""
        if entry.published or entry.detail is None:
            logger.info("duplicate of a completed request: nothing to do")
            self._release(lease, state.history, state.completed, deadline)
            return None
        logger.info("publishing the result event of an earlier delivery")
        detail = detail_from_dict(entry.detail)
        published = self._publisher.publish(detail)
        completed = {**state.completed, request_hash: entry.as_published()} if published else state.completed
        self._release(lease, state.history, completed, deadline)
        if not published:
            raise PutBack("upstream_error", "the result event could not be published", requeue_on_last_delivery=True)
        return detail

    def _apply(
        self,
        lease: LeaseRecord,
        state: CompletionState,
        mine: InFlight,
        delivery: Delivery,
        outcomes: InvocationOutcomes,
    ) -> ResultDetail:
        request, deadline = delivery.request, delivery.deadline
        detail: ResultDetail
        outcome: Outcome
        superseded: list[str] = []
        try:
            applied = self._tagger.apply(delivery, Ordering(mine.token, state.history))
        except CompletionsApiError as error:
            if error.retryable:
                if error.outcome_unknown:
                    self._keep_until_settled(lease, error.retry_after or 0.0, deadline)
                else:
                    self._release(lease, state.history, state.completed, deadline)
                raise PutBack.from_api_error(error) from None
            outcome = "failed"
            detail = failed_detail(delivery, error)
        except ApiKeyUnavailable as error:
            self._release(lease, state.history, state.completed, deadline)
            raise PutBack.from_key_unavailable(error) from None
        except BaseException:
            self._release(lease, state.history, state.completed, deadline)
            raise
        else:
            outcome, superseded = "tagged", applied.superseded
            detail = tagged_detail(delivery, applied)
        published = self._publisher.publish(detail)
        history = record_applied(request, mine.token, state.history) if outcome == "tagged" else state.history
        entry = CompletedRequest(
            mine.message_id,
            outcome,
            published=published,
            at=int(self._wall_clock()),
            superseded=bool(superseded),
            detail=None if published else detail.model_dump(mode="json"),
        )
        self._release(
            lease,
            replace(history, last_completed=mine.message_id),
            {**state.completed, mine.request_hash: entry},
            deadline,
        )
        outcomes.count_superseded(len(superseded))
        if not published:
            # Recorded as completed with its event unpublished: the redelivery publishes it, no second write.
            raise PutBack("upstream_error", "the result event could not be published", requeue_on_last_delivery=True)
        return detail

    def _keep_until_settled(self, lease: LeaseRecord, settle_seconds: float, deadline: Deadline) -> None:
        """A write whose outcome is unknown: keep the lease (and the entry in flight) while it may land."""
        if deadline.until_end() < POST_WRITE_CALL_SECONDS:
            return  # the lease already lasts past the invocation by the API's timeout
        try:
            self._leases.store.extend(lease, int(settle_seconds * 1000))
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.warning(
                "could not keep the lease while a write settles; it expires by itself", extra={"error": str(error)}
            )

    def _release(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest],
        deadline: Deadline,
        *,
        keep_in_flight: InFlight | None = None,
    ) -> None:
        """Write the record and give the lease up. Best effort: if it fails (or the invocation has no time
        left for it), the entry in flight stays and the next request for the completion settles it."""
        if deadline.until_end() < POST_WRITE_CALL_SECONDS:
            logger.error("no time left to release the completion's lease: the next request settles it")
            return
        try:
            self._leases.store.release(lease, history, completed, keep_in_flight)
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.error(
                "could not record the request on its completion's record: the next request settles it",
                extra={"error": str(error)},
            )


def _intent(delivery: Delivery, owner: str) -> InFlight:
    """What this delivery will write, as the completion's record holds it while the request is in flight."""
    return InFlight.of(delivery.request, delivery.message_id, owner, delivery.order_token)
