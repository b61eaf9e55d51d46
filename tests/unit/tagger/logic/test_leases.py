"""Waiting for a completion's lease: bounded by the invocation, jittered, and put back only when it must be."""

from __future__ import annotations

import pytest

from tagger.errors import LeaseHeld, LeaseStoreUnavailable, PutBack
from tagger.logic.key_versions import CompletionHistory
from tagger.logic.leases import CONTENDED_DELAY_SECONDS, MAX_WAIT_SECONDS, MIN_WORK_SECONDS, CompletionLeases
from tagger.logic.outcomes import InvocationOutcomes
from tagger.logic.timing import Deadline
from tagger.ports import LeaseRecord


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedStore:
    """Answers `acquire` from a script: an exception to raise, or None to grant the lease."""

    def __init__(self, script: list[Exception | None]) -> None:
        self.script = script
        self.holds_ms: list[int] = []

    def acquire(self, completion_id: str, owner: str, hold_ms: int, intent: object = None) -> LeaseRecord:
        self.holds_ms.append(hold_ms)
        outcome = self.script.pop(0)
        if outcome is not None:
            raise outcome
        return LeaseRecord(completion_id, owner, CompletionHistory(last_completed="m0"))


def leases(store: ScriptedStore, clock: FakeClock) -> CompletionLeases:
    return CompletionLeases(store, margin_seconds=15.0, sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]


def deadline(clock: FakeClock, seconds: float) -> Deadline:
    return Deadline(lambda: int((seconds - clock.now) * 1000), reserve_millis=0)


def test_a_free_lease_is_taken_at_once_and_held_past_the_invocation_by_the_margin() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    store = ScriptedStore([None])
    lease = leases(store, clock).acquire("c1", "m1", deadline(clock, 30), outcomes)
    assert lease.history.last_completed == "m0"
    assert lease.owner.split("/")[1] == "m1"
    assert store.holds_ms == [45_000]
    assert outcomes.lease_wait_ms == []
    assert clock.now == 0


def test_a_busy_lease_is_waited_for_with_growing_jittered_pauses() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    busy = LeaseHeld("other/m9", until_ms=10_000)
    store = ScriptedStore([busy, busy, busy, None])
    leases(store, clock).acquire("c1", "m1", deadline(clock, 30), outcomes)
    assert len(outcomes.lease_wait_ms) == 1
    assert outcomes.lease_wait_ms[0] == pytest.approx(clock.now * 1000)
    assert 0.175 <= clock.now <= 0.35  # 25-50 ms, then 50-100 ms, then 100-200 ms
    assert outcomes.lease_contention == 0


def test_a_lease_still_busy_near_the_deadline_puts_the_record_back_with_a_short_delay() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    store = ScriptedStore([LeaseHeld("other/m9", until_ms=60_000)] * 100)
    with pytest.raises(PutBack) as put_back:
        leases(store, clock).acquire("c1", "m1", deadline(clock, 5), outcomes)
    assert "other/m9" in put_back.value.message
    assert put_back.value.code == "upstream_error"
    assert put_back.value.retry_after is not None and 1.0 <= put_back.value.retry_after <= 5.0
    assert clock.now <= 5 - MIN_WORK_SECONDS  # left time to work, never waited past the deadline
    assert outcomes.lease_contention == 1
    assert len(outcomes.lease_wait_ms) == 1


def test_an_unavailable_lease_store_puts_the_record_back_at_once() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    store = ScriptedStore([LeaseStoreUnavailable("could not take the completion's lease (ThrottlingException)")])
    with pytest.raises(PutBack, match=r"ThrottlingException.*not applied without it"):
        leases(store, clock).acquire("c1", "m1", deadline(clock, 30), outcomes)
    assert clock.now == 0


def wall(clock: FakeClock, epoch_seconds: float = 1_000_000.0) -> float:
    return epoch_seconds + clock.now


def test_a_record_with_no_time_left_to_wait_goes_back_at_once_and_comes_back_no_later_than_the_lease_ends() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    lease_ends_ms = int((wall(clock) + 3.0) * 1000)  # the holder's lease ends in 3 s
    store = ScriptedStore([LeaseHeld("other/m9", until_ms=lease_ends_ms)] * 10)
    waiting = CompletionLeases(
        store,  # type: ignore[arg-type]
        margin_seconds=15.0,
        sleep=clock.sleep,
        clock=clock,
        wall_clock=lambda: wall(clock),
    )
    with pytest.raises(PutBack) as put_back:
        waiting.acquire("c1", "m1", deadline(clock, MIN_WORK_SECONDS), outcomes)
    assert clock.now == 0  # no polling at all
    assert put_back.value.requeue_on_last_delivery  # contention alone is never dead-lettered
    assert put_back.value.retry_after is not None and put_back.value.retry_after <= 3.0


def test_a_wait_is_bounded_so_other_completions_chains_are_not_kept_waiting() -> None:
    clock, outcomes = FakeClock(), InvocationOutcomes()
    store = ScriptedStore([LeaseHeld("other/m9", until_ms=2**50)] * 1000)
    with pytest.raises(PutBack) as put_back:
        leases(store, clock).acquire("c1", "m1", deadline(clock, 900), outcomes)
    assert clock.now <= MAX_WAIT_SECONDS  # a 15-minute invocation still gives up after the bound
    assert outcomes.lease_contention == 1
    assert put_back.value.retry_after is not None
    assert CONTENDED_DELAY_SECONDS[0] <= put_back.value.retry_after <= CONTENDED_DELAY_SECONDS[1]
