"""The fleet-wide request budget (README, "Configuration": `API_REQUESTS_PER_SECOND`): its DynamoDB schedule
against moto's server, and three containers (separate processes) keeping to the cap together."""

from __future__ import annotations

import bisect
import time
from pathlib import Path

import boto3
import pytest

from local_openai.server import LocalOpenAIServer
from local_stack.fleet import ContainerFleet
from local_stack.provision import StackResources
from tagger.adapters.request_slots import DynamoRequestSlots
from tests.integration.harness import Harness, Seeder, StackMaker, fleet_spec, send_bodies

pytestmark = pytest.mark.integration

MICROS = 1_000_000
CAP_PER_SECOND = 20
# The acceptance: at most 22 requests per second in any 5 s window (a slot of slack per second for the
# containers' sleeps waking late, and for requests whose slots fell at a window's edge).
WINDOW_SECONDS = 5
ALLOWED_PER_SECOND = 22


def slots(stack: StackResources, clock: list[float]) -> DynamoRequestSlots:
    return DynamoRequestSlots(boto3.client("dynamodb"), stack.table_name, clock=lambda: clock[0])


def test_reservations_from_two_containers_follow_each_other(stack: StackResources) -> None:
    clock = [1_000.0]
    first, second = slots(stack, clock), slots(stack, clock)
    now_us = round(clock[0] * MICROS)
    assert first.reserve(250_000, 10 * MICROS).start_us == now_us  # idle schedule: from now
    assert second.reserve(250_000, 10 * MICROS).start_us == now_us + 250_000  # busy: after the first's span
    assert first.reserve(250_000, 10 * MICROS).start_us == now_us + 500_000
    clock[0] += 5  # the schedule has gone idle again
    assert second.reserve(250_000, 10 * MICROS).start_us == now_us + 5 * MICROS


def test_a_schedule_booked_beyond_the_horizon_refuses_without_booking(stack: StackResources) -> None:
    clock = [1_000.0]
    store = slots(stack, clock)
    now_us = round(clock[0] * MICROS)
    store.hold_off_until(now_us + 30 * MICROS)  # a 429 asked for 30 s
    grant = store.reserve(250_000, 10 * MICROS)
    assert (grant.start_us, grant.next_free_us) == (None, now_us + 30 * MICROS)
    assert slots(stack, clock).reserve(250_000, 60 * MICROS).start_us == now_us + 30 * MICROS


def test_an_earlier_hold_off_never_pulls_the_schedule_back(stack: StackResources) -> None:
    clock = [1_000.0]
    store = slots(stack, clock)
    now_us = round(clock[0] * MICROS)
    store.hold_off_until(now_us + 30 * MICROS)
    store.hold_off_until(now_us + 2 * MICROS)
    assert store.reserve(250_000, 60 * MICROS).start_us == now_us + 30 * MICROS


def most_in_any_window(arrivals: list[float], seconds: float) -> int:
    """The largest number of arrivals within any window of `seconds` (windows start at an arrival)."""
    ordered = sorted(arrivals)
    return max(bisect.bisect_left(ordered, start + seconds) - index for index, start in enumerate(ordered))


def test_three_containers_together_stay_under_the_cap(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=12)  # over the containers' 10 s function timeout
    completions = [seed() for _ in range(200)]
    # Each merge is a read and a write: 400 requests, 20 s at the cap; 30 records in flight want far more.
    spec = fleet_spec(
        stack,
        api,
        batch_size=10,
        function_log=tmp_path / "function.log",
        API_REQUESTS_PER_SECOND=str(CAP_PER_SECOND),
    )
    with ContainerFleet(spec, 3) as fleet:
        started = time.time()
        send_bodies(stack.queue_url, [{"completion_id": c, "metadata": {"backfill": "1"}} for c in completions])
        assert fleet.wait_until_drained(120.0)
        assert fleet.dead_lettered_ids() == set()
        took_batches = [c for c in fleet.stats().containers if c.counters.invocations > 0]
    assert len(took_batches) == 3, "every container should have sent requests"
    assert all(api.metadata_of(completion) == {"backfill": "1"} for completion in completions)

    arrivals = [moment for moment in api.stats()["arrivals"] if moment >= started]
    assert len(arrivals) >= 400
    busiest_window = most_in_any_window(arrivals, WINDOW_SECONDS)
    assert busiest_window <= ALLOWED_PER_SECOND * WINDOW_SECONDS
    span = max(arrivals) - min(arrivals)
    # The measurement, for the performance notes (pytest -s).
    print(
        f"\nrequest budget: {len(arrivals)} requests in {span:.1f} s = {len(arrivals) / span:.1f}/s "
        f"(cap {CAP_PER_SECOND}/s); most in any 1 s: {most_in_any_window(arrivals, 1)}, "
        f"in any {WINDOW_SECONDS} s: {busiest_window} ({busiest_window / WINDOW_SECONDS:.1f}/s)"
    )


def test_without_a_cap_no_budget_is_kept(harness: Harness, seed: Seeder) -> None:
    response, _ = harness.run(harness.service(), [{"completion_id": seed(), "metadata": {"a": "1"}}])
    assert response == {"batchItemFailures": []}
    item = boto3.client("dynamodb").get_item(
        TableName=harness.stack.table_name, Key={"id": {"S": "completion-tagger-rate#openai-api"}}
    )
    assert "Item" not in item
