"""The fleet-wide cap on API requests per second (README, "Configuration": `API_REQUESTS_PER_SECOND`).

Every container takes request slots from one shared schedule (`RequestSlotStore`): a record of when the
next free slot begins. A container reserves a run of slots at once (a quarter second's worth at the cap),
sends each of its requests no earlier than its slot, and drops the slots it could not use in time. The
slots of all containers never overlap, so together they send at most the cap in any second, give or take
one slot. A 429's `Retry-After` moves the shared schedule past it (`hold_off`, called by the container's
`RateLimitGate`), so one container's 429 holds the others back too.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from tagger.errors import CompletionsApiError, RequestBudgetUnavailable
from tagger.logic.timing import Deadline
from tagger.ports import RequestSlotStore

# How much request time a container reserves at once: larger chunks mean fewer DynamoDB writes, smaller
# ones less time wasted by a container that reserved slots it then has no request for.
CHUNK_SECONDS = 0.25
MICROS = 1_000_000


class RequestBudget:
    """Paces one container's API requests within the fleet's shared requests-per-second budget."""

    def __init__(
        self,
        store: RequestSlotStore,
        per_second: float,
        *,
        max_chunk: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._store = store
        self._interval_us = max(round(MICROS / per_second), 1)
        self._chunk = max(1, min(math.ceil(per_second * CHUNK_SECONDS), max_chunk))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: deque[int] = deque()
        self._known_next_free_us = 0  # the shared schedule's first free slot, as last seen

    def wait_for_turn(self, deadline: Deadline) -> None:
        """Sleep until this request's slot; raises a retryable `rate_limited` CompletionsApiError when the first
        free slot is beyond what the invocation has left (the record is put back for that long)."""
        slot_us = self._take_slot(deadline)
        wait = slot_us / MICROS - self._clock()
        if wait > 0:
            self._sleep(wait)

    def hold_off(self, seconds: float) -> None:
        """The API asked us to back off: no container starts a request in the next `seconds`."""
        until_us = self._now_us() + round(seconds * MICROS)
        with self._lock:
            if until_us <= self._known_next_free_us + self._chunk * self._interval_us:
                return  # the schedule is booked past it already (this is our own budget's refusal)
            self._known_next_free_us = until_us
            self._slots.clear()
        self._store.hold_off_until(until_us)

    def _take_slot(self, deadline: Deadline) -> int:
        with self._lock:
            now_us = self._now_us()
            while self._slots and self._slots[0] < now_us - self._interval_us:
                self._slots.popleft()  # long past: using it now would crowd another container's slots
            if not self._slots:
                self._reserve(now_us, deadline)
            return self._slots.popleft()

    def _reserve(self, now_us: int, deadline: Deadline) -> None:
        span_us = self._chunk * self._interval_us
        horizon_us = round(deadline.remaining() * MICROS)
        try:
            grant = self._store.reserve(span_us, horizon_us)
        except RequestBudgetUnavailable as error:
            raise CompletionsApiError("upstream_error", f"not sent: {error}", retryable=True) from None
        if grant.start_us is None:
            self._known_next_free_us = grant.next_free_us
            wait = max(grant.next_free_us - now_us, 0) / MICROS
            raise CompletionsApiError(
                "rate_limited",
                f"not sent: the fleet's request budget (API_REQUESTS_PER_SECOND) is booked for the next {wait:.1f} s",
                retryable=True,
                retry_after=wait,
            )
        self._known_next_free_us = grant.start_us + span_us
        self._slots.extend(range(grant.start_us, grant.start_us + span_us, self._interval_us))

    def _now_us(self) -> int:
        return round(self._clock() * MICROS)
