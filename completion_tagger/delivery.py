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

    def send(self, requests: Iterable[Outgoing]) -> DeliveryTally:
        """Send everything; a DestinationError (no retry can help) is raised after the batch it hit, and a
        request already read for the next batch, are counted as failed; the rest is left unread."""
        held: list[Outgoing] = []
        for batch in batches(requests, self.destination.entry_size, held):
            self.pacer.wait(len(batch))
            try:
                failures = self._send_with_retries(batch)
            except DestinationError as error:
                self.tally.failed.extend(Rejected(entry.number, str(error)) for entry in batch)
                self.tally.failed.extend(
                    Rejected(entry.number, f"the run stopped before it: {error}") for entry in held
                )
                raise
            self.tally.sent += len(batch) - len(failures)
            self.tally.failed.extend(Rejected(failure.number, failure.reason) for failure in failures)
            self.on_progress(len(batch))
        return self.tally

    def _send_with_retries(self, batch: Sequence[Outgoing]) -> list[EntryFailure]:
        """Permanent failures at once, retryable ones after the last attempt."""
        pending = list(batch)
        permanent: list[EntryFailure] = []
        retryable: list[EntryFailure] = []

        def attempt() -> list[EntryFailure]:
            nonlocal pending, retryable
            self.tally.calls += 1
            failures = self.destination.send_batch(pending)
            permanent.extend(failure for failure in failures if not failure.retryable)
            retryable = [failure for failure in failures if failure.retryable]
            again = {failure.number for failure in retryable}
            pending = [entry for entry in pending if entry.number in again]
            return retryable

        retrying = Retrying(
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential_jitter(multiplier=self.retry.initial_seconds, max=self.retry.max_seconds),
            retry=retry_if_result(bool),
            retry_error_callback=_last_result,
            sleep=self._sleep,
        )
        retrying(attempt)
        return permanent + retryable


def _last_result(state: RetryCallState) -> list[EntryFailure]:
    """After the last attempt, the entries still failing (rather than tenacity's RetryError)."""
    return state.outcome.result() if state.outcome is not None else []


def batches(
    requests: Iterable[Outgoing], size_of: Callable[[Outgoing], int], held: list[Outgoing] | None = None
) -> Iterator[list[Outgoing]]:
    """Consecutive groups of at most ten requests whose sizes add up to at most one call's payload limit.

    A full group is handed over before the next request is read. Only a request too large to join its
    group has been read ahead; while that group is out, it is in `held`, so a caller that stops there
    can account for it.
    """
    held = [] if held is None else held
    batch: list[Outgoing] = []
    batch_bytes = 0
    for request in requests:
        size = size_of(request)
        if batch and batch_bytes + size > MAX_BATCH_BYTES:
            held[:] = [request]
            yield batch
            held.clear()
            batch, batch_bytes = [], 0
        batch.append(request)
        batch_bytes += size
        if len(batch) == MAX_BATCH_ENTRIES:
            yield batch
            batch, batch_bytes = [], 0
    if batch:
        yield batch
