"""Result events to EventBridge: concurrent records' events coalesced into PutEvents calls within its limits
(10 entries, 256 KB of entry size), every attempt made only while the invocation has time for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tagger.adapters.after_write_clients import ATTEMPT_SECONDS
from tagger.adapters.event_entries import MAX_CALL_ENTRY_BYTES, entry_size, result_entry
from tagger.logic.timing import Deadline
from tagger.models import ResultDetail
from tagger.telemetry import logger

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

MAX_ENTRIES_PER_CALL = 10  # PutEvents' limit
PUBLISH_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 0.1
# Only a safety net: a waiting event is normally sent as soon as no running record can add to its call.
# Kept short because a record the pool starts meanwhile counts as a participant for a whole API round
# trip, so the last few events of each wave of MAX_CONCURRENCY records wait this long.
LINGER_SECONDS = 0.05
# Events are published after the API write, inside the invocation's reserve (TIME_RESERVE_MILLIS, 3 s by
# default, which holds the first attempt and what follows it). One attempt takes at most ATTEMPT_SECONDS; a
# resend is made only if AFTER_PUBLISH_SECONDS would still be left after it for what follows: one more
# bounded call of the same length (settling the completion's lease), then returning. PutEvents normally
# answers in tens of milliseconds; one answered after the read timeout may be published again by the resend
# (README, "Result events": consumers dedupe on message_id).
AFTER_PUBLISH_SECONDS = 1.5


class EventsClient(Protocol):
    """What the publisher uses of boto3's EventBridge client."""

    def put_events(self, *, Entries: list[Any]) -> Mapping[str, Any]: ...  # noqa: N803 - boto3's name


class _Pending:
    __slots__ = ("done", "entry", "published", "size")

    def __init__(self, entry: PutEventsRequestEntryTypeDef):
        self.entry = entry
        self.size = entry_size(entry)
        self.done = threading.Event()
        self.published = False


class EventPublisher:
    """`publish()` blocks until its event is accepted (True) or given up on (False).

    Records running concurrently register as participants. An event waits only while another participant
    is still working and could add an event to the same call; once a call is full (10 entries, or no room
    for the next entry in 256 KB), or every participant is waiting, they go out together. So a batch of 10
    records costs one PutEvents call (two when their events are large), while a lone record is not delayed.
    """

    def __init__(
        self,
        client: EventsClient,
        bus_name: str,
        source: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_call: Callable[[], None] | None = None,
    ):
        self._client = client
        self._bus_name = bus_name
        self._source = source
        self._sleep = sleep
        self._on_call = on_call
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._participants = 0
        self._deadline: Deadline | None = None

    def bind_deadline(self, deadline: Deadline) -> None:
        """The invocation now running (one at a time per container): its deadline bounds every attempt."""
        self._deadline = deadline

    @contextmanager
    def participant(self) -> Iterator[None]:
        """Mark a unit of work that may publish; while it runs, others' events may wait for its event."""
        with self._lock:
            self._participants += 1
        try:
            yield
        finally:
            with self._lock:
                self._participants -= 1
                ready = self._take_ready()
            self._send(ready)

    def publish(self, detail: ResultDetail) -> bool:
        pending = _Pending(result_entry(detail, self._source, self._bus_name))
        with self._lock:
            self._waiting.append(pending)
            ready = self._take_ready()
        self._send(ready)
        if not pending.done.wait(LINGER_SECONDS):
            with self._lock:
                ready = self._take_including(pending)
            self._send(ready)
        pending.done.wait()
        return pending.published

    def _take_ready(self) -> list[list[_Pending]]:
        """Under the lock: the calls that should go now, if any. A full call goes at once; a partial one only
        when no running participant could still add to it."""
        everyone_waits = len(self._waiting) >= self._participants
        calls = []
        while self._waiting:
            call = self._next_call()
            if len(call) == len(self._waiting) and len(call) < MAX_ENTRIES_PER_CALL and not everyone_waits:
                break  # room left, and someone may still fill it
            calls.append(self._take(len(call)))
        return calls

    def _take_including(self, pending: _Pending) -> list[list[_Pending]]:
        """Under the lock: the calls up to and including the one carrying `pending` (none if already taken)."""
        if pending not in self._waiting:
            return []  # another thread is already sending it
        calls = []
        while pending in self._waiting:
            calls.append(self._take(len(self._next_call())))
        return calls

    def _next_call(self) -> list[_Pending]:
        """The waiting events the next call can carry: in order, up to 10 and under 256 KB (at least one)."""
        call: list[_Pending] = []
        size = 0
        for pending in self._waiting[:MAX_ENTRIES_PER_CALL]:
            if call and size + pending.size >= MAX_CALL_ENTRY_BYTES:
                break
            call.append(pending)
            size += pending.size
        return call

    def _take(self, count: int) -> list[_Pending]:
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        return taken

    def _send(self, calls: list[list[_Pending]]) -> None:
        try:
            for batch in calls:
                self._send_call(batch)
        finally:  # whatever happened, no waiter is left waiting
            for batch in calls:
                for pending in batch:
                    pending.done.set()

    def _send_call(self, batch: list[_Pending]) -> None:
        """PutEvents, then bounded resends of only the entries that failed while the invocation has time for them;
        always releases the waiters."""
        try:
            unsent = self._put(batch)
            for attempt in range(1, PUBLISH_ATTEMPTS):
                if not unsent:
                    break
                delay = RETRY_DELAY_SECONDS * attempt
                if not self._has_time_for_attempt(after=delay):
                    logger.warning(
                        "no time left in the invocation to resend result events", extra={"events": len(unsent)}
                    )
                    break
                self._sleep(delay)
                unsent = self._put(unsent)
            if unsent:
                logger.error("result events could not be published", extra={"events": len(unsent)})
        finally:
            for pending in batch:
                pending.done.set()

    def _has_time_for_attempt(self, after: float = 0.0) -> bool:
        """Whether an attempt starting `after` seconds from now ends with AFTER_PUBLISH_SECONDS still left."""
        if self._deadline is None:
            return True
        return self._deadline.until_end() >= after + ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS

    def _put(self, batch: list[_Pending]) -> list[_Pending]:
        """One PutEvents call; returns the entries still unpublished."""
        if self._on_call:
            self._on_call()
        try:
            response = self._client.put_events(Entries=[pending.entry for pending in batch])
        except (ClientError, BotoCoreError) as error:
            logger.warning("PutEvents failed", extra={"error": type(error).__name__, "events": len(batch)})
            return batch
        results: list[Any] = response.get("Entries", [])
        failed = []
        for pending, result in zip(batch, results, strict=False):
            if result.get("EventId") and not result.get("ErrorCode"):
                pending.published = True
            else:
                failed.append(pending)
        failed.extend(batch[len(results) :])  # entries the response did not account for
        if failed:
            logger.warning(
                "PutEvents rejected entries",
                extra={
                    "failed_entry_count": response.get("FailedEntryCount", len(failed)),
                    "error_codes": sorted({str(r.get("ErrorCode")) for r in results if r.get("ErrorCode")}),
                },
            )
        return failed
