"""Taking a completion's lease: one request at a time per completion, across invocations and containers.

OpenAI's update has no conditional write, so a merge's read → merge → write is only safe while no other
request updates the same completion. The lease is held from before the first API call until the outcome is
settled; it expires by itself at the end of the holder's invocation plus a margin, so a crashed container
blocks its completion for about one function timeout at most. A busy completion is waited out inside the
invocation (jittered polling, bounded by the deadline) and only then put back.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable

from tagger.errors import LeaseHeld, LeaseStoreUnavailable, PutBack
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
    ):
        self._store = store
        self._margin_seconds = margin_seconds
        self._sleep = sleep
        self._clock = clock
        self._container_id = container_id()

    @property
    def store(self) -> LeaseStore:
        return self._store

    def acquire(
        self, completion_id: str, message_id: str, deadline: Deadline, outcomes: InvocationOutcomes
    ) -> LeaseRecord:
        """The completion's lease with its history; raises PutBack when it stays busy or the store fails."""
        owner = f"{self._container_id}/{message_id}/{uuid.uuid4().hex[:6]}"
        started = self._clock()
        attempt = 0
        while True:
            hold_ms = int((deadline.until_end() + self._margin_seconds) * 1000)
            try:
                lease = self._store.acquire(completion_id, owner, hold_ms)
            except LeaseStoreUnavailable as error:
                raise PutBack("upstream_error", f"{error}; not applied without it") from None
            except LeaseHeld as held:
                attempt += 1
                pause = _poll_delay(attempt)
                if attempt == 1:
                    logger.info("completion busy: waiting for its lease", extra={"lease_holder": held.holder})
                if not deadline.allows(pause + MIN_WORK_SECONDS):
                    outcomes.count_lease_wait(self._clock() - started)
                    outcomes.count_lease_contention()
                    logger.warning(
                        "completion still busy at the end of the invocation: put back",
                        extra={"lease_holder": held.holder, "waited_seconds": round(self._clock() - started, 3)},
                    )
                    raise PutBack(
                        "upstream_error",
                        f"completion busy: its lease is held by another request ({held.holder})",
                        retry_after=random.uniform(*CONTENDED_DELAY_SECONDS),  # noqa: S311 - jitter
                    ) from None
                self._sleep(pause)
                continue
            if attempt:
                outcomes.count_lease_wait(self._clock() - started)
                logger.info("lease taken after waiting", extra={"waited_seconds": round(self._clock() - started, 3)})
            return lease


def _poll_delay(attempt: int) -> float:
    ceiling = min(POLL_MAX_SECONDS, POLL_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
