"""Small in-memory stand-ins for what the function's logic needs from outside (tagger.ports), and a rig that
runs SQS batches through the real service wired to them."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

from local_stack.lambda_context import LocalLambdaContext
from local_stack.sqs_records import lambda_sqs_record
from tagger.adapters.requeue import copy_attributes
from tagger.composition import ServiceParts, wire_service
from tagger.config import Settings
from tagger.errors import CompletionsApiError, LeaseHeld, LeaseLost, LeaseStoreUnavailable
from tagger.logic.completion_record import CompletedRequest, InFlight
from tagger.logic.key_versions import CompletionHistory
from tagger.logic.leases import CompletionLeases
from tagger.logic.outcomes import InvocationOutcomes, OutcomeRecorder
from tagger.logic.timing import Deadline, RateLimitGate
from tagger.models import ResultDetail
from tagger.ports import (
    ApiKeySource,
    CompletionsApi,
    LeaseRecord,
    LeaseStore,
    PutBackRecord,
    RequestSlotStore,
    Requeue,
    RequeuedCopy,
    ResultPublisher,
    SlotGrant,
    VisibilityBackoff,
)

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:tag-requests"


class FakeClock:
    """Monotonic time that only moves when `sleep` is called; every sleep is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def deadline_on(clock: FakeClock, seconds_left: float, reserve_seconds: float = 0.0) -> Deadline:
    """A Deadline whose invocation ends `seconds_left` after the clock's current time."""
    ends_at = clock.now + seconds_left
    return Deadline(lambda: round((ends_at - clock.now) * 1000), int(reserve_seconds * 1000))


class FakeKeys:
    """An API key source: `get` hands out the current key, `refresh` moves on to the next one (a rotation)."""

    def __init__(self, *keys: str) -> None:
        self._keys = list(keys)
        self._index = 0
        self.refreshes = 0

    def get(self) -> str:
        return self._keys[self._index]

    def refresh(self) -> str:
        self.refreshes += 1
        self._index = min(self._index + 1, len(self._keys) - 1)
        return self.get()


class FakeApi:
    """Completions in a dict. `failures` is a script: per completion, errors raised by its next calls.

    `calls` records every call as (method, completion id), `written` every metadata written, in order.
    Stored metadata is handed back as it is, so a test can store a malformed value.
    """

    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}
        self.failures: dict[str, list[CompletionsApiError]] = {}
        self.calls: list[tuple[str, str]] = []
        self.written: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def seed(self, completion_id: str, metadata: dict[str, str] | None = None) -> str:
        self.metadata[completion_id] = dict(metadata or {})
        return completion_id

    def writes(self, completion_id: str | None = None) -> int:
        return sum(1 for method, cid in self.calls if method == "POST" and completion_id in (None, cid))

    def _answer(self, method: str, completion_id: str) -> None:
        with self.lock:
            self.calls.append((method, completion_id))
            script = self.failures.get(completion_id)
            if script:
                raise script.pop(0)
            if completion_id not in self.metadata:
                raise CompletionsApiError("not_found", "OpenAI API answered 404", retryable=False, status=404)

    def retrieve(self, completion_id: str, deadline: Deadline) -> dict[str, Any]:
        self._answer("GET", completion_id)
        stored = self.metadata[completion_id]
        return {"id": completion_id, "metadata": dict(stored) if isinstance(stored, dict) else stored}

    def update_metadata(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]:
        self._answer("POST", completion_id)
        with self.lock:
            self.written.append(dict(metadata))
            self.metadata[completion_id] = dict(metadata)
        return {"id": completion_id, "metadata": dict(metadata)}


class FakePublisher:
    """Keeps published details; refuses them while `accepting` is False."""

    def __init__(self) -> None:
        self.published: list[ResultDetail] = []
        self.refused: list[ResultDetail] = []
        self.accepting = True
        self.lock = threading.Lock()

    def publish(self, detail: ResultDetail) -> bool:
        with self.lock:
            (self.published if self.accepting else self.refused).append(detail)
            return self.accepting

    @contextmanager
    def participant(self) -> Iterator[None]:
        yield

    def events(self) -> list[dict[str, Any]]:
        return [detail.model_dump(mode="json") for detail in self.published]


class InMemoryPersistence(BasePersistenceLayer):
    """Powertools' idempotency records in a dict, with the DynamoDB layer's rule: a live record blocks a put."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[str, DataRecord] = {}
        self.lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self.lock:
            if idempotency_key not in self.items:
                raise IdempotencyItemNotFoundError
            return self.items[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        with self.lock:
            existing = self.items.get(data_record.idempotency_key)
            if existing is not None and existing.status != STATUS_CONSTANTS["EXPIRED"]:
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self.items[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        with self.lock:
            self.items[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self.lock:
            self.items.pop(data_record.idempotency_key, None)

    def completed(self) -> int:
        return sum(1 for item in self.items.values() if item.status == STATUS_CONSTANTS["COMPLETED"])


@dataclass
class StoredLease:
    owner: str | None
    until_ms: int
    history: CompletionHistory = field(default_factory=CompletionHistory)
    completed: Mapping[str, CompletedRequest] = field(default_factory=dict)
    in_flight: InFlight | None = None


class FakeLeaseStore:
    """One record per completion in a dict. `unavailable` makes every call fail; `held_by` makes a completion
    look leased by someone else for ever; `expire` ends a lease as if its holder's time had run out.
    `calls` counts the calls made, by name."""

    def __init__(self) -> None:
        self.leases: dict[str, StoredLease] = {}
        self.unavailable = False
        self.held_by: dict[str, str] = {}
        self.extended: list[tuple[str, int]] = []
        self.released: list[str] = []
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.unavailable:
            raise LeaseStoreUnavailable("could not take the completion's lease (ThrottlingException)")

    def _held(self, lease: LeaseRecord) -> StoredLease:
        stored = self.leases[lease.completion_id]
        if stored.owner != lease.owner:
            raise LeaseLost(f"the lease on {lease.completion_id} is no longer held by {lease.owner}")
        return stored

    def acquire(self, completion_id: str, owner: str, hold_ms: int, intent: InFlight | None = None) -> LeaseRecord:
        with self.lock:
            self._check("acquire")
            if completion_id in self.held_by:
                raise LeaseHeld(self.held_by[completion_id], until_ms=2**40)
            stored = self.leases.setdefault(completion_id, StoredLease(None, 0))
            if stored.owner is not None:
                raise LeaseHeld(stored.owner, stored.until_ms)
            stored.owner, stored.until_ms = owner, hold_ms
            if stored.in_flight is None:
                stored.in_flight = intent
            return LeaseRecord(completion_id, owner, stored.history, dict(stored.completed), stored.in_flight)

    def save(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest],
        in_flight: InFlight | None,
    ) -> None:
        with self.lock:
            self._check("save")
            stored = self._held(lease)
            stored.history, stored.completed, stored.in_flight = history, dict(completed), in_flight

    def release(
        self,
        lease: LeaseRecord,
        history: CompletionHistory,
        completed: Mapping[str, CompletedRequest] | None = None,
        keep_in_flight: InFlight | None = None,
    ) -> None:
        with self.lock:
            self._check("release")
            stored = self._held(lease)
            stored.owner, stored.history, stored.in_flight = None, history, keep_in_flight
            stored.completed = dict(lease.completed if completed is None else completed)
            self.released.append(lease.completion_id)

    def extend(self, lease: LeaseRecord, hold_ms: int) -> None:
        with self.lock:
            self._check("extend")
            self.extended.append((lease.completion_id, hold_ms))

    def expire(self, completion_id: str) -> None:
        """The holder's lease runs out (it crashed, or never released)."""
        with self.lock:
            self.leases[completion_id].owner = None

    def holder(self, completion_id: str) -> str | None:
        stored = self.leases.get(completion_id)
        return stored.owner if stored else None

    def history(self, completion_id: str) -> CompletionHistory:
        return self.leases[completion_id].history


class FakeRequeue:
    """Keeps the copies a last delivery re-queues; refuses them while `accepting` is False."""

    def __init__(self) -> None:
        self.copies: list[RequeuedCopy] = []
        self.accepting = True

    def send_copy(self, record: RequeuedCopy) -> bool:
        if self.accepting:
            self.copies.append(record)
        return self.accepting

    def as_records(self, receive_count: int = 1) -> list[dict[str, Any]]:
        """The copies as SQS would deliver them: new message ids, the original's identity and order."""
        records = []
        for copy in self.copies:
            record = sqs_record(copy.body, receive_count=receive_count)
            record["messageAttributes"] = {
                name: {"dataType": value["DataType"], "stringValue": value["StringValue"]}
                for name, value in copy_attributes(copy).items()
            }
            records.append(record)
        self.copies = []
        return records


class RecordingVisibility:
    def __init__(self) -> None:
        self.applied: list[PutBackRecord] = []

    def apply(self, records: Sequence[PutBackRecord]) -> None:
        self.applied.extend(records)


_message_ids = itertools.count(1)
_last_sent_ms = 0
_sent_lock = threading.Lock()


def next_sent_ms() -> int:
    """Strictly increasing SentTimestamps, so records order as they were made (message ids do not sort: m10 < m9),
    and never behind the clock: a record is sent now, as SQS would stamp it, however long after the test session
    began (an `issued_at` is checked against it)."""
    global _last_sent_ms  # noqa: PLW0603 - one sequence for the whole test session
    with _sent_lock:
        _last_sent_ms = max(int(time.time() * 1000), _last_sent_ms + 1)
        return _last_sent_ms


def sqs_record(body: str | dict[str, Any], *, receive_count: int = 1, sent_ms: int | None = None) -> dict[str, Any]:
    """A record as Lambda delivers it (local_stack's builder), for a message this fake queue has just received."""
    message_id = f"m{next(_message_ids)}"
    text = body if isinstance(body, str) else json.dumps(body)
    sent = str(sent_ms if sent_ms is not None else next_sent_ms())
    message = {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": text,
        "MD5OfBody": hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "Attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": sent,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": sent,
        },
    }
    return lambda_sqs_record(message, QUEUE_ARN)


@dataclass
class Rig:
    """The real service, its logic wired to the fakes above."""

    leases: bool = True
    max_receive_count: int = 5
    max_concurrency: int = 4
    api: FakeApi = field(default_factory=FakeApi)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    persistence: InMemoryPersistence = field(default_factory=InMemoryPersistence)
    lease_store: FakeLeaseStore = field(default_factory=FakeLeaseStore)
    visibility: RecordingVisibility = field(default_factory=RecordingVisibility)
    gate: RateLimitGate = field(default_factory=RateLimitGate)
    recorder: OutcomeRecorder = field(default_factory=OutcomeRecorder)
    lease_sleeps: list[float] = field(default_factory=list)
    requeue: FakeRequeue = field(default_factory=FakeRequeue)

    def __post_init__(self) -> None:
        settings = Settings(
            openai_api_key="sk-unit",
            idempotency_table_name="unit",
            max_receive_count=self.max_receive_count,
            max_concurrency=self.max_concurrency,
            completion_leases=self.leases,
            time_reserve_millis=1000,
        )
        # Waiting for a lease passes on a fake clock: every pause is recorded in `lease_sleeps`, none is slept.
        lease_clock = FakeClock()
        lease_clock.sleeps = self.lease_sleeps
        leases = (
            CompletionLeases(self.lease_store, margin_seconds=2.0, sleep=lease_clock.sleep, clock=lease_clock)
            if self.leases
            else None
        )
        self.service = wire_service(
            settings,
            ServiceParts(
                api=self.api,
                publisher=self.publisher,
                persistence=self.persistence,
                leases=leases,
                requeue=self.requeue,
                visibility=self.visibility,
                gate=self.gate,
                recorder=self.recorder,
            ),
        )

    def run(
        self, records: list[dict[str, Any]], *, timeout_seconds: float = 30.0
    ) -> tuple[PartialItemFailureResponse, InvocationOutcomes]:
        metrics = Metrics(namespace="CompletionTaggerUnit")
        try:
            response = self.service.handle(
                {"Records": records},
                LocalLambdaContext(timeout_seconds=timeout_seconds),  # type: ignore[arg-type]
                metrics,
            )
        finally:
            metrics.clear_metrics()
        return response, self.recorder.current

    def send(self, *bodies: str | dict[str, Any], receive_count: int = 1) -> tuple[set[str], InvocationOutcomes]:
        """Run one batch of fresh records; returns the message ids put back and the invocation's tally."""
        response, outcomes = self.run([sqs_record(body, receive_count=receive_count) for body in bodies])
        return set(put_backs(response)), outcomes


def put_backs(response: PartialItemFailureResponse) -> list[str]:
    """The message ids a batch response puts back, in batch order."""
    return [str(item["itemIdentifier"]) for item in response["batchItemFailures"]]


class InMemoryRequestSlots:
    """The fleet's shared request schedule in memory, on the given clock (epoch seconds)."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.next_free_us = 0
        self.writes = 0

    def reserve(self, span_us: int, horizon_us: int) -> SlotGrant:
        now_us = round(self._clock() * 1_000_000)
        if self.next_free_us - now_us > horizon_us:
            return SlotGrant(start_us=None, next_free_us=self.next_free_us)
        self.writes += 1
        start = max(self.next_free_us, now_us)
        self.next_free_us = start + span_us
        return SlotGrant(start_us=start, next_free_us=start)

    def hold_off_until(self, until_us: int) -> None:
        self.writes += 1
        self.next_free_us = max(self.next_free_us, until_us)


if TYPE_CHECKING:  # each fake stands in for a port: mypy holds it to the Protocol, however a test wires it in
    _api: CompletionsApi = FakeApi()
    _publisher: ResultPublisher = FakePublisher()
    _lease_store: LeaseStore = FakeLeaseStore()
    _requeue: Requeue = FakeRequeue()
    _visibility: VisibilityBackoff = RecordingVisibility()
    _keys: ApiKeySource = FakeKeys()
    _request_slots: RequestSlotStore = InMemoryRequestSlots(FakeClock())
