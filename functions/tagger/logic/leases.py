"""Taking a completion's lease: one request at a time per completion, across invocations and containers.

OpenAI's update has no conditional write, so a merge's read → merge → write is only safe while no other
request updates the same completion. The lease is held from before the first API call until the outcome is
settled; it expires by itself at the end of the holder's invocation plus a margin, so a crashed container
blocks its completion for about one function timeout at most. A busy completion is waited out inside the
invocation (jittered polling) for at most MAX_WAIT_SECONDS, never past the holder's lease nor the deadline,
and then put back: a record goes back at once when the deadline leaves no time to wait, and its delay never
outlasts the holder's lease. The bound keeps a waiting chain from holding a worker that other completions'
chains queue for (a batch may have more chains than MAX_CONCURRENCY).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable

from tagger.errors import LeaseHeld, LeaseStoreUnavailable, PutBack
from tagger.logic.completion_record import InFlight
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.timing import Deadline
from tagger.ports import LeaseRecord, LeaseStore
from tagger.telemetry import logger

POLL_BASE_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0
# Time a request still needs once it has the lease (a read and a write), beyond the invocation's reserve.
MIN_WORK_SECONDS = 1.0
# A contended record comes back after a short, jittered delay: the holder is usually done by then.
CONTENDED_DELAY_SECONDS = (1.0, 5.0)
# Longest a record polls for a busy lease: a holder is usually done within one API round trip or two.
MAX_WAIT_SECONDS = 2.0


def container_id() -> str:
    """Names this container in lease holders: its log stream's id on Lambda, so an operator can find the
    holder's logs; the process id elsewhere."""
    stream = os.getenv("AWS_LAMBDA_LOG_STREAM_NAME", "")
    return stream.rsplit("]", 1)[-1] if stream else f"local-{os.getpid()}"


class CompletionLeases:
    """Acquires leases with bounded, jittered waiting; see the module docstring."""

    def __init__(
        self,
        store: LeaseStore,
        margin_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._margin_seconds = margin_seconds
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._container_id = container_id()

    @property
    def store(self) -> LeaseStore:
        return self._store

    def _new_owner(self, message_id: str) -> str:
        """A holder name unique to one attempt: container, message, and a random suffix."""
        return f"{self._container_id}/{message_id}/{uuid.uuid4().hex[:6]}"

    def acquire(
        self,
        completion_id: str,
        message_id: str,
        deadline: Deadline,
        outcomes: InvocationOutcomes,
        intent: Callable[[str], InFlight] | None = None,
    ) -> LeaseRecord:
        """The completion's lease with its record, `intent(owner)` recorded as in flight in the same write;
        raises PutBack when it stays busy or the store fails."""
        owner = self._new_owner(message_id)
        in_flight = intent(owner) if intent is not None else None
        started = self._clock()
        attempt = 0
        while True:
            hold_ms = int((deadline.until_end() + self._margin_seconds) * 1000)
            try:
                lease = self._store.acquire(completion_id, owner, hold_ms, in_flight)
            except LeaseStoreUnavailable as error:
                raise PutBack("upstream_error", f"{error}; not applied without it") from None
            except LeaseHeld as held:
                attempt += 1
                pause = _poll_delay(attempt)
                lease_left = max(held.until_ms / 1000 - self._wall_clock(), 0.0)
                waited = self._clock() - started
                if attempt == 1:
                    logger.info("completion busy: waiting for its lease", extra={"lease_holder": held.holder})
                if waited + pause > MAX_WAIT_SECONDS or not deadline.allows(pause + MIN_WORK_SECONDS):
                    raise self._give_up(held, lease_left, waited, outcomes) from None
                self._sleep(pause)
                continue
            if attempt:
                outcomes.count_lease_wait(self._clock() - started)
                logger.info("lease taken after waiting", extra={"waited_seconds": round(self._clock() - started, 3)})
            return lease

    @staticmethod
    def _give_up(held: LeaseHeld, lease_left: float, waited: float, outcomes: InvocationOutcomes) -> PutBack:
        """Put back for contention: it comes back after a short jittered delay, or when the lease ends if
        sooner; on its last delivery it is re-queued rather than dead-lettered."""
        outcomes.count_lease_wait(waited)
        outcomes.count_lease_contention()
        logger.warning(
            "completion still busy: put back",
            extra={"lease_holder": held.holder, "waited_seconds": round(waited, 3), "lease_left": round(lease_left)},
        )
        delay = random.uniform(*CONTENDED_DELAY_SECONDS)  # noqa: S311 - jitter, not cryptography
        return PutBack(
            "upstream_error",
            f"completion busy: its lease is held by another request ({held.holder})",
            retry_after=min(delay, max(lease_left, CONTENDED_DELAY_SECONDS[0])),
            requeue_on_last_delivery=True,
        )


def _poll_delay(attempt: int) -> float:
    ceiling = min(POLL_MAX_SECONDS, POLL_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
