"""Deadline: the usable rest of an invocation. RateLimitGate: how long the API asked the container to stay away."""

from __future__ import annotations

import threading
import time

import pytest

from tagger.logic.timing import Deadline, RateLimitGate
from tests.shared.fakes import FakeClock


def test_remaining_is_lambdas_remaining_time_less_the_reserve() -> None:
    deadline = Deadline(lambda: 10_000, 2_500)
    assert deadline.remaining() == 7.5
    assert deadline.until_end() == 10.0


def test_remaining_follows_the_clock_down_to_zero_and_never_below() -> None:
    left = [5_000]
    deadline = Deadline(lambda: left[0], 1_000)
    assert deadline.remaining() == 4.0
    left[0] = 1_500
    assert deadline.remaining() == 0.5
    left[0] = 800  # inside the reserve
    assert deadline.remaining() == 0.0
    assert deadline.until_end() == 0.8
    left[0] = -200  # Lambda's clock already past the end
    assert deadline.remaining() == 0.0
    assert deadline.until_end() == 0.0


def test_allows_only_waits_that_leave_time_to_finish() -> None:
    deadline = Deadline(lambda: 3_000, 1_000)  # 2 s usable
    assert deadline.allows(0.0)
    assert deadline.allows(1.999)
    assert not deadline.allows(2.0)  # a wait that uses up all the time leaves none for the call itself
    assert not deadline.allows(5.0)
    assert not Deadline(lambda: 500, 1_000).allows(0.0)


def test_gate_is_open_until_blocked_and_counts_down_with_the_clock() -> None:
    clock = FakeClock()
    gate = RateLimitGate(clock=clock)
    assert gate.wait_left() == 0.0
    gate.block_for(7.0)
    assert gate.wait_left() == 7.0
    clock.now += 2.5
    assert gate.wait_left() == 4.5
    clock.now += 10.0
    assert gate.wait_left() == 0.0


@pytest.mark.parametrize(("first", "second"), [(3.0, 8.0), (8.0, 3.0)])
def test_gate_keeps_the_later_of_two_blocks(first: float, second: float) -> None:
    clock = FakeClock()
    gate = RateLimitGate(clock=clock)
    gate.block_for(first)
    gate.block_for(second)
    assert gate.wait_left() == 8.0


def test_a_shorter_block_asked_later_does_not_shorten_an_earlier_longer_one() -> None:
    clock = FakeClock()
    gate = RateLimitGate(clock=clock)
    gate.block_for(10.0)
    clock.now += 4.0
    gate.block_for(1.0)
    assert gate.wait_left() == 6.0
    gate.block_for(9.0)  # now + 9 is later than the first block's end
    assert gate.wait_left() == 9.0


class _YieldingClock:
    """A fixed clock that lets other threads run on every read, widening any unlocked read-modify-write."""

    def __call__(self) -> float:
        time.sleep(0.0002)
        return 1000.0


def test_gate_keeps_the_longest_block_when_many_threads_block_at_once() -> None:
    gate = RateLimitGate(clock=_YieldingClock())
    start = threading.Barrier(8)

    def block(longest: float) -> None:
        start.wait()
        for seconds in range(1, 20):
            gate.block_for(float(seconds))
            if seconds == 10:
                gate.block_for(longest)

    threads = [threading.Thread(target=block, args=(60.0 + index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gate.wait_left() == 67.0
