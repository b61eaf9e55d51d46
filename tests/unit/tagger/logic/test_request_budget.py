"""The fleet-wide request budget (README, "Configuration": `API_REQUESTS_PER_SECOND`) on a fake clock."""

from __future__ import annotations

import itertools

import pytest

from tagger.errors import CompletionsApiError
from tagger.logic.request_budget import RequestBudget
from tagger.logic.timing import RateLimitGate
from tests.shared.fakes import FakeClock, InMemoryRequestSlots, deadline_on


def budget_on(store: InMemoryRequestSlots, clock: FakeClock, per_second: float = 20) -> RequestBudget:
    return RequestBudget(store, per_second, max_chunk=10, clock=clock, sleep=clock.sleep)


def test_one_container_sends_one_request_per_interval() -> None:
    clock = FakeClock()
    budget = budget_on(InMemoryRequestSlots(clock), clock)
    sent = []
    for _ in range(12):
        budget.wait_for_turn(deadline_on(clock, 60))
        sent.append(clock.now)
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(sent)]
    assert gaps == [0.05] * 11


def test_containers_sharing_the_schedule_get_slots_that_never_overlap() -> None:
    clock = FakeClock()
    store = InMemoryRequestSlots(clock)
    first, second = budget_on(store, clock), budget_on(store, clock)
    first.wait_for_turn(deadline_on(clock, 60))  # books 0.25 s: five slots from now
    started = clock.now
    second.wait_for_turn(deadline_on(clock, 60))  # books the next five, and waits for the first of them
    assert round(clock.now - started, 6) == 0.25
    assert store.writes == 2  # one write per chunk of five requests


def test_a_schedule_booked_past_the_invocation_refuses_and_puts_back_for_that_long() -> None:
    clock = FakeClock()
    store = InMemoryRequestSlots(clock)
    store.next_free_us = round((clock.now + 30) * 1_000_000)
    with pytest.raises(CompletionsApiError) as raised:
        budget_on(store, clock).wait_for_turn(deadline_on(clock, 10))
    assert (raised.value.code, raised.value.retryable, raised.value.retry_after) == ("rate_limited", True, 30.0)
    assert clock.sleeps == []


def test_a_429_holds_every_container_back() -> None:
    clock = FakeClock()
    store = InMemoryRequestSlots(clock)
    throttled, other = budget_on(store, clock), budget_on(store, clock)
    RateLimitGate(clock, share=throttled.hold_off).block_for(7.0)
    other.wait_for_turn(deadline_on(clock, 60))
    assert clock.sleeps == [7.0]


def test_its_own_refusal_is_not_written_back_to_the_schedule() -> None:
    clock = FakeClock()
    store = InMemoryRequestSlots(clock)
    store.next_free_us = round((clock.now + 30) * 1_000_000)
    budget = budget_on(store, clock)
    gate = RateLimitGate(clock, share=budget.hold_off)
    with pytest.raises(CompletionsApiError) as raised:
        budget.wait_for_turn(deadline_on(clock, 10))
    gate.block_for(raised.value.retry_after or 0)  # what the API client does with a rate_limited failure
    assert store.writes == 0
    assert gate.wait_left() == 30.0
