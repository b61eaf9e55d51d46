"""Valid requests out to a destination: in batches, paced, with failed entries retried with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential_jitter

from completion_tagger.destinations import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    Destination,
    DestinationError,
    EntryFailure,
)
from completion_tagger.pacing import Pacer
from completion_tagger.validation import Outgoing, Rejected

DEFAULT_ATTEMPTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, failed entries of a batch are tried again."""

    attempts: int = DEFAULT_ATTEMPTS
    initial_seconds: float = 0.2
    max_seconds: float = 10.0


@dataclass
class DeliveryTally:
    """What happened to the requests handed to `Delivery.send`."""

    sent: int = 0
    failed: list[Rejected] = field(default_factory=list)
    calls: int = 0


class Delivery:
    """Sends `Outgoing` requests to one destination; `send` can be called again with more."""

    def __init__(
        self,
        destination: Destination,
        *,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        on_progress: Callable[[int], object] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.destination = destination
        self.pacer = pacer or Pacer(None)
        self.retry = retry or RetryPolicy()
        self.on_progress = on_progress or (lambda count: None)
        self._sleep = sleep
        self.tally = DeliveryTally()
        # The batch being sent: what has not been accepted yet, what was refused for good, and whether a
        # call is in flight (so an interruption can say which requests may or may not have been sent).
        self._batch: list[Outgoing] = []
        self._pending: list[Outgoing] = []
        self._permanent: list[EntryFailure] = []
        self._in_call = False

    def send(self, requests: Iterable[Outgoing]) -> DeliveryTally:
        """Send everything. A DestinationError (no retry can help), or an interruption (KeyboardInterrupt),
        is raised after every request read is accounted for in the tally; the rest is left unread."""
        held: list[Outgoing] = []  # read, not yet in a batch
        try:
            sendable = self._within_entry_limit(requests)
            for batch in batches(sendable, self.destination.entry_size, held, self.pacer.batch_limit):
                self._start(batch)
                self.pacer.wait(len(batch))
                try:
                    failures = self._send_with_retries(batch)
                except DestinationError as error:
                    self._start([])
                    self.tally.failed.extend(Rejected(entry.number, str(error)) for entry in batch)
                    self.tally.failed.extend(
                        Rejected(entry.number, f"the run stopped before it: {error}") for entry in held
                    )
                    raise
                self._start([])
                self.tally.sent += len(batch) - len(failures)
                self.tally.failed.extend(Rejected(failure.number, failure.reason) for failure in failures)
                self.on_progress(len(batch))
        except KeyboardInterrupt:
            self._account_for_interruption(held)
            raise
        return self.tally

    def _within_entry_limit(self, requests: Iterable[Outgoing]) -> Iterator[Outgoing]:
        """The requests the destination can take; one too large is named as failed and never sent."""
        limit = self.destination.max_entry_bytes
        for request in requests:
            size = self.destination.entry_size(request)
            if size > limit:
                reason = f"too large: {size:,} bytes, where {self.destination.description} takes {limit:,}"
                self.tally.failed.append(Rejected(request.number, reason))
            else:
                yield request

    def _start(self, batch: list[Outgoing]) -> None:
        self._batch, self._pending, self._permanent, self._in_call = batch, list(batch), [], False

    def _account_for_interruption(self, held: list[Outgoing]) -> None:
        self.tally.sent += len(self._batch) - len(self._pending) - len(self._permanent)
        self.tally.failed.extend(Rejected(failure.number, failure.reason) for failure in self._permanent)
        in_flight = "interrupted while its call was in flight: it may have been sent"
        reason = in_flight if self._in_call else "interrupted"
        self.tally.failed.extend(Rejected(entry.number, reason) for entry in self._pending)
        self.tally.failed.extend(Rejected(entry.number, "interrupted") for entry in held)
        self._start([])

    def _send_with_retries(self, batch: Sequence[Outgoing]) -> list[EntryFailure]:
        """Permanent failures at once, retryable ones after the last attempt."""
        retryable: list[EntryFailure] = []

        def attempt() -> list[EntryFailure]:
            nonlocal retryable
            self.tally.calls += 1
            self._in_call = True
            failures = self.destination.send_batch(self._pending)
            self._in_call = False
            self._permanent.extend(failure for failure in failures if not failure.retryable)
            retryable = [failure for failure in failures if failure.retryable]
            again = {failure.number for failure in retryable}
            self._pending = [entry for entry in self._pending if entry.number in again]
            return retryable

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential_jitter(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            retry=retry_if_result(bool),
            retry_error_callback=_last_result,
            sleep=self._sleep,
        )
        retrying(attempt)
        return self._permanent + retryable


def _last_result(state: RetryCallState) -> list[EntryFailure]:
    """After the last attempt, the entries still failing (rather than tenacity's RetryError)."""
    return state.outcome.result() if state.outcome is not None else []


def batches(
    requests: Iterable[Outgoing],
    size_of: Callable[[Outgoing], int],
    held: list[Outgoing] | None = None,
    max_entries: int = MAX_BATCH_ENTRIES,
) -> Iterator[list[Outgoing]]:
    """Consecutive groups of at most `max_entries` (ten) requests whose sizes add up to at most one call's
    payload limit.

    A full group is handed over before the next request is read. `held` is always what has been read but
    not handed over yet (the group being filled, or the one request that did not fit in the group just
    handed over), so a caller that stops can account for every request read.
    """
    held = [] if held is None else held
    held.clear()
    held_bytes = 0
    for request in requests:
        size = size_of(request)
        if held and held_bytes + size > MAX_BATCH_BYTES:
            batch = held[:]
            held[:] = [request]
            held_bytes = size
            yield batch
        else:
            held.append(request)
            held_bytes += size
        if len(held) == max_entries:
            batch = held[:]
            held.clear()
            held_bytes = 0
            yield batch
    if held:
        batch = held[:]
        held.clear()
        yield batch
