"""Lambda-like containers as processes: the real handler in several spawned interpreters on one queue.

Each test pays for its containers' cold starts (a fresh interpreter and the handler's import each),
so there are few tests, each covering several properties of one fleet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from local_openai.server import LocalOpenAIServer
from local_stack.container import ContainerExited, InvocationEnded, InvocationStarted, Report
from local_stack.fleet import ContainerFleet, ContainerStartError
from tests.integration.harness import API_KEY, Seeder, StackMaker, fleet_spec, send_bodies

pytestmark = pytest.mark.integration

DRAIN_TIMEOUT_SECONDS = 60.0


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def most_at_once(reports: list[Report]) -> int:
    """The most invocations in progress at the same time, from the order of start and end reports."""
    busy: set[int] = set()
    most = 0
    for report in reports:
        if isinstance(report, InvocationStarted):
            busy.add(report.index)
            most = max(most, len(busy))
        elif isinstance(report, InvocationEnded | ContainerExited):
            busy.discard(report.index)
    return most


def test_containers_are_processes_that_share_one_queue_and_end_every_message_once(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=2, max_receive_count=2)
    api.configure(latency=0.15)
    completions = [seed({"seeded": "yes"}) for _ in range(12)]
    poison = seed()
    api.inject_fault(503, count=1000, completion_id=poison)  # put back until the queue dead-letters it
    log = tmp_path / "function.log"
    spec = fleet_spec(stack, api, max_receive_count=2, batch_size=2, function_log=log)

    with ContainerFleet(spec, 3) as fleet:
        pids = fleet.pids()
        bodies = [{"completion_id": c, "metadata": {f"key-{n}": "v"}} for n in range(2) for c in completions]
        sent = send_bodies(stack.queue_url, [*bodies, {"completion_id": poison, "metadata": {"k": "v"}}])
        assert fleet.wait_for_ended(sent, DRAIN_TIMEOUT_SECONDS)
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        dead = fleet.dead_lettered_ids()
        deleted = fleet.deleted_message_ids
        twice = fleet.deleted_more_than_once()
        stats = fleet.stats()
    reports = fleet.drain()

    # Three separate processes, none of them this one, all gone after the block.
    assert len(set(pids.values())) == 3 and os.getpid() not in pids.values()
    assert not any(running(pid) for pid in pids.values())
    assert {c.state for c in stats.containers} == {"ready"}
    assert all(isinstance(r, ContainerExited) and r.cause == "stopped" for r in reports[-3:])
    # Every container took batches, and some ran at the same time.
    assert all(c.counters.invocations >= 1 for c in stats.containers)
    assert most_at_once(reports) >= 2
    # Every message ended exactly once: deleted by one invocation, or dead-lettered.
    assert dead == {sent[-1]}
    assert deleted == set(sent[:-1]) and not twice
    assert stats.totals.records_deleted == len(sent) - 1
    assert stats.totals.records_put_back >= 2  # the poison message, on both of its deliveries
    for completion in completions:
        assert api.metadata_of(completion) == {"seeded": "yes", "key-0": "v", "key-1": "v"}
    # Each container appended its function output to the one log, whole lines: one metric blob per invocation;
    # log lines (the poison's put-backs) name invocations the containers reported.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum("_aws" in line for line in lines) == stats.totals.invocations
    logged = {line["function_request_id"] for line in lines if "function_request_id" in line}
    started = {r.request_id for r in reports if isinstance(r, InvocationStarted)}
    assert logged and logged <= started


def test_a_killed_container_leaves_its_batch_to_come_back_to_another(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder
) -> None:
    stack = make_stack(visibility_timeout_seconds=1, max_receive_count=10)
    completion = seed({"seeded": "yes"})
    api.configure(latency=3.0)  # the invocation is still waiting on the API when it is killed
    # The in-progress idempotency record of the killed invocation expires with its function timeout.
    spec = fleet_spec(stack, api, max_receive_count=10, function_timeout_seconds=3.0)

    with ContainerFleet(spec, 2) as fleet:
        (message_id,) = send_bodies(stack.queue_url, [{"completion_id": completion, "metadata": {"after": "crash"}}])
        assert fleet.wait_for(lambda: message_id in sum(fleet.busy().values(), ()), DRAIN_TIMEOUT_SECONDS)
        (victim,) = fleet.busy()
        victim_pid = fleet.pids()[victim]
        assert fleet.kill(victim) == (message_id,)
        assert not running(victim_pid) and victim not in fleet.pids()
        assert message_id not in fleet.deleted_message_ids
        api.configure(latency=0.0)
        replacement = fleet.replace(victim)  # Lambda would start a new container
        assert replacement != victim and fleet.stats().containers[replacement].state == "ready"

        assert fleet.wait_for_deleted([message_id], DRAIN_TIMEOUT_SECONDS)
        reports = fleet.drain()
    ends = [r for r in reports if isinstance(r, InvocationEnded) and message_id in r.report.deleted]
    (end,) = ends
    assert end.index != victim
    assert end.report.receive_counts[message_id] >= 2  # delivered again after its visibility timeout
    exits = [r for r in reports if isinstance(r, ContainerExited) and r.index == victim]
    assert exits == [ContainerExited(victim, victim_pid, -9, "killed", abandoned=(message_id,))]
    assert api.metadata_of(completion) == {"seeded": "yes", "after": "crash"}


def test_a_container_busy_past_the_grace_period_is_terminated_on_stop(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder
) -> None:
    stack = make_stack()
    api.configure(latency=5.0)
    spec = fleet_spec(stack, api, function_timeout_seconds=30.0)
    fleet = ContainerFleet(spec, 1, stop_grace_seconds=0.2).start()
    try:
        send_bodies(stack.queue_url, [{"completion_id": seed(), "metadata": {"k": "v"}}])
        assert fleet.wait_for(lambda: bool(fleet.busy()), DRAIN_TIMEOUT_SECONDS)
        (pid,) = fleet.pids().values()
    finally:
        fleet.stop()
    assert not running(pid)
    (container,) = fleet.stats().containers
    assert container.state == "stopped" and container.counters.invocations == 0


def test_a_handler_that_fails_to_import_is_a_start_error_naming_the_variable(
    make_stack: StackMaker, api: LocalOpenAIServer
) -> None:
    spec = fleet_spec(make_stack(), api, OPENAI_BASE_URL="http://api.example.com/v1")
    fleet = ContainerFleet(spec, 2)
    with pytest.raises(ContainerStartError, match="OPENAI_BASE_URL") as raised:
        fleet.start()
    assert API_KEY not in str(raised.value)
    assert {c.state for c in fleet.stats().containers} <= {"failed", "stopped"}
    assert not any(running(c.pid) for c in fleet.stats().containers)
