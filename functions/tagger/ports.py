"""What the function's logic needs from the outside world, as Protocols, and the records that cross over.

`logic/` types its collaborators with these and never imports `adapters/`; `composition.py` hands it the
adapters, and unit tests hand it small fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tagger.logic.completion_record import CompletedRequest, InFlight
from tagger.logic.key_versions import CompletionHistory
from tagger.logic.timing import Deadline
from tagger.models import ResultDetail


@dataclass(frozen=True)
class SlotGrant:
    """The answer to a reservation of request slots in the fleet's shared budget.

    `start_us` (epoch microseconds) is when the first reserved slot begins, or None when the reservation
    was refused because the first free slot, `next_free_us`, lies beyond the horizon asked for.
    """

    start_us: int | None
    next_free_us: int


class RequestSlotStore(Protocol):
    """The fleet's shared request schedule (README, "Configuration": `API_REQUESTS_PER_SECOND`).

    One record says when the next free request slot begins; every container reserves a run of slots
    after it and pushes it forward, so all containers together keep to the rate.
    """

    def reserve(self, span_us: int, horizon_us: int) -> SlotGrant:
        """Reserve `span_us` of request time starting at the first free slot, if that is within `horizon_us`."""
        ...

    def hold_off_until(self, until_us: int) -> None:
        """No slot may begin before `until_us` (the API asked the fleet to back off)."""
        ...


class RequestPacer(Protocol):
    """Holds each API request back until its turn in the fleet's budget (`logic.request_budget`)."""

    def wait_for_turn(self, deadline: Deadline) -> None: ...


@dataclass(frozen=True)
class LeaseRecord:
    """A completion's lease we hold, with the record it read: the history, the completed requests and the
    request in flight (ours, just written, or one left by a holder that never settled it)."""

    completion_id: str
    owner: str
    history: CompletionHistory
    completed: Mapping[str, CompletedRequest] = field(default_factory=dict)
    in_flight: InFlight | None = None


@dataclass(frozen=True)
class PutBackRecord:
    """Enough of a put-back record to change its visibility afterwards."""

    queue_arn: str
    receipt_handle: str
    receive_count: int
    is_last_delivery: bool
    retry_after: float | None
    # The quota is exhausted: nothing helps until someone fixes the billing, so the record stays away
    # for the longest backoff at once (README, "What happens to each message").
    longest_backoff: bool = False


# Message attributes of a copy the function re-queued on a last delivery (docs/design.md, "Concurrency and
# ordering"): the copy keeps the original's identity and order, so re-queueing changes neither.
ORIGINAL_MESSAGE_ID = "CompletionTaggerOriginalMessageId"
ORIGINAL_SENT_TIMESTAMP = "CompletionTaggerOriginalSentTimestamp"
# How many times the message has been re-queued as a copy: re-queueing is bounded, so a request that keeps
# failing for another reason (a write answered with a 5xx keeps its completion leased while it settles, and
# its next delivery finds the lease busy) still ends in the dead-letter queue instead of going round for ever.
COPY_GENERATION = "CompletionTaggerCopyGeneration"
MAX_COPY_GENERATIONS = 3


@dataclass(frozen=True)
class RequeuedCopy:
    """What a re-queued copy of a record carries: its body and attributes, the original's identity and order."""

    queue_arn: str
    body: str
    message_id: str
    sent_timestamp_ms: int
    attributes: Mapping[str, Any]
    delay_seconds: int
    generation: int  # this copy's: one more than the record's


class CompletionsApi(Protocol):
    """The stored-completions API. Both calls raise `CompletionsApiError` when they fail."""

    def retrieve(self, completion_id: str, deadline: Deadline) -> dict[str, Any]: ...

    def update_metadata(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]: ...


class ResultPublisher(Protocol):
    """Publishes result events; `publish` answers whether the event was accepted."""

    def publish(self, detail: ResultDetail) -> bool: ...

    def participant(self) -> AbstractContextManager[None]:
        """Scope of a unit of work that may publish (concurrent units' events can share one call)."""
        ...


class DestinationCheck(Protocol):
    """Confirms the result events' destination exists; `ensure` raises `EventBusMissing` while it does not."""

    def ensure(self) -> None: ...


class LeaseStore(Protocol):
    """One record per completion: its lease, history, completed requests and the request in flight.

    `acquire` takes the lease and records `intent` as in flight unless an entry is already there (which is
    then never overwritten), and returns the record, in one round trip; it raises `LeaseHeld` when the lease
    is taken. `save` writes a settled record and keeps the lease; `release` writes the outcome, clears the
    entry in flight (unless told to keep one that is still unsettled) and gives the lease up; `extend` keeps
    it longer. Every call raises `LeaseStoreUnavailable` when the store does not answer;
    `save`/`release`/`extend` raise `LeaseLost` when the lease is no longer ours."""

    def acquire(self, completion_id: str, owner: str, hold_ms: int, intent: InFlight | None = None) -> LeaseRecord: ...

    def save(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest],
        in_flight: InFlight | None,
    ) -> None: ...

    def release(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest] | None = None,
        keep_in_flight: InFlight | None = None,
    ) -> None: ...

    def extend(self, lease: LeaseRecord, hold_ms: int) -> None: ...


class Requeue(Protocol):
    """Sends a copy of a record to its queue that keeps the original's identity and order (answers whether
    it was sent)."""

    def send_copy(self, record: RequeuedCopy) -> bool: ...


class VisibilityBackoff(Protocol):
    """Keeps put-back records away from the queue for a while (best effort)."""

    def apply(self, records: Sequence[PutBackRecord]) -> None: ...


class ApiKeySource(Protocol):
    """The API key; `refresh` re-reads it (after a 401: it may have been rotated). Raise `ApiKeyUnavailable`."""

    def get(self) -> str: ...

    def refresh(self) -> str: ...


class SecretsSource(Protocol):
    """Reads a secret's value, cached for `max_age` seconds unless `force_fetch`."""

    def get(self, name: str, *, max_age: int, force_fetch: bool) -> object: ...
