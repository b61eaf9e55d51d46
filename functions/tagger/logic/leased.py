"""Applying a request under its completion's lease (the README's "Tag requests", and docs/design.md,
"Concurrency and ordering"): take the lease, run the unit of work, record what it changed, release.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tagger.errors import LeaseLost, LeaseStoreUnavailable, PutBack
from tagger.logic.key_versions import CompletionHistory, order_token, record_applied
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.tagging import Ordering
from tagger.logic.timing import Deadline
from tagger.logic.unit_of_work import REPLAYED, UnitOfWork
from tagger.models import TaggedDetail, TagRequest, detail_from_dict
from tagger.ports import LeaseRecord
from tagger.telemetry import logger


class LeasedApply:
    """Runs the unit of work while holding the completion's lease, so one request at a time changes it.

    A write whose outcome is unknown keeps the lease until it has settled, so the next request for the
    completion reads what that write did.
    """

    def __init__(self, leases: CompletionLeases, unit: UnitOfWork):
        self._leases = leases
        self._unit = unit

    def run(
        self,
        record: SQSRecord,
        request: TagRequest,
        deadline: Deadline,
        outcomes: InvocationOutcomes,
        *,
        redelivered: bool,
        is_last: bool,
    ) -> dict[str, Any]:
        """The unit's stored result, with the completion's history updated and its lease released."""
        lease = self._leases.acquire(request.completion_id, record.message_id, deadline, outcomes)
        ordering = Ordering(order_token(_sent_timestamp_ms(record), record.message_id), lease.history)
        try:
            stored = self._unit.run(request, record.message_id, deadline, redelivered=redelivered, ordering=ordering)
        except PutBack as put_back:
            if put_back.outcome_unknown:
                self._keep_until_settled(lease, put_back.retry_after or 0.0)
            else:
                self._release(lease, lease.history, must_record=False)
            raise
        except BaseException:
            self._release(lease, lease.history, must_record=False)
            raise
        history = lease.history
        detail = detail_from_dict(stored["detail"])
        if isinstance(detail, TaggedDetail):
            history = record_applied(request, ordering.token, history)
            outcomes.count_superseded(0 if stored.get(REPLAYED) else len(detail.superseded or []))
        if not stored.get(REPLAYED):
            history = replace(history, last_completed=record.message_id)
        self._release(lease, history, must_record=history != lease.history and not is_last)
        return stored

    def _keep_until_settled(self, lease: LeaseRecord, settle_seconds: float) -> None:
        try:
            self._leases.store.extend(lease, int(settle_seconds * 1000))
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.warning(
                "could not keep the lease while a write settles; it expires by itself", extra={"error": str(error)}
            )

    def _release(self, lease: LeaseRecord, history: CompletionHistory, *, must_record: bool) -> None:
        """Write the history and release. If what was applied cannot be recorded, the record goes back: its
        redelivery is a duplicate that records it then."""
        try:
            self._leases.store.release(lease, history)
        except (LeaseLost, LeaseStoreUnavailable) as error:
            logger.error("could not record the request on its completion's lease", extra={"error": str(error)})
            if must_record:
                raise PutBack("upstream_error", f"the request was applied but not recorded: {error}") from None


def _sent_timestamp_ms(record: SQSRecord) -> int:
    """SQS's SentTimestamp orders requests; a record without one (a hand-made event) counts as sent now."""
    sent = record.attributes.sent_timestamp
    return int(sent) if sent else int(time.time() * 1000)
