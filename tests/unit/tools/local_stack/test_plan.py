"""What a local run will do, decided from its options: the containers' count."""

from __future__ import annotations

import pytest

from local_stack.plan import MAX_LOCAL_CONCURRENCY, RunOptions, RunOptionsError, make_plan


@pytest.mark.parametrize("concurrency", [0, -1, MAX_LOCAL_CONCURRENCY + 1])
def test_a_container_count_out_of_range_is_a_usage_error_naming_the_option(concurrency: int) -> None:
    with pytest.raises(RunOptionsError, match=f"--concurrency must be between 1 and {MAX_LOCAL_CONCURRENCY}"):
        make_plan(RunOptions(concurrency=concurrency), {})


@pytest.mark.parametrize("concurrency", [1, MAX_LOCAL_CONCURRENCY])
def test_the_bounds_themselves_are_accepted(concurrency: int) -> None:
    assert make_plan(RunOptions(concurrency=concurrency), {}).requests
