"""Crash safety, swept over every point after the API write (README, "Tag requests": Idempotency;
docs/design.md, "Concurrency and ordering").

For a merge, a replace and a removal, a container whose write the local OpenAI server has accepted then
sees its AWS calls (DynamoDB and EventBridge alike) fail from the k-th one on for the rest of that
invocation — or is SIGKILLed just before the k-th — for every k up to past its last call
(`tests.integration.aws_faults`, hooks in the container process, nothing in the product). Then a newer
request for the same completion is sent, the faulted message comes back on its own (a redelivery), and
healthy containers drain everything. Every completion must end as its requests applied in send order
say (`local_stack.expected_state`), every message must end once (tagged, or in the dead-letter queue
with a retryable failure — never one whose write was applied), no message may get two different
outcomes, and a repeated event is the same event with the same `message_id`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_openai.server import LocalOpenAIServer
from local_stack.container import ContainerSpec
from local_stack.expected_state import expected_metadata
from local_stack.fleet import ContainerFleet
from local_stack.provision import StackResources
from tagger.models import TagRequest
from tests.integration.aws_faults import (
    Action,
    CrashPoint,
    fault_environment,
    read_journal,
    write_plan,
)
from tests.integration.harness import (
    Harness,
    Seeder,
    StackMaker,
    dead_lettered_identities,
    fleet_spec,
    send_bodies,
)

pytestmark = pytest.mark.integration

# Past the last AWS call a request makes after its write (the sweep checks it got past it).
POINTS = 6
FUNCTION_TIMEOUT_SECONDS = 4.0  # a killed container's lease expires about this + the API timeout later
VISIBILITY_TIMEOUT_SECONDS = 5  # at least the function timeout: a message never returns mid-invocation
FAULT_PHASE_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 120.0
HEALTHY_CONTAINERS = 2

INITIAL = {"verdict": "seed", "keep": "k", "old": "o"}
FIRST: dict[str, dict[str, Any]] = {
    "merge": {"metadata": {"verdict": "first", "a": "1"}},
    "replace": {"metadata": {"verdict": "first", "r": "1"}, "mode": "replace"},
    "remove": {"metadata": {}, "remove": ["old"]},
}
# Newer, and naming the keys the first one named: an older redelivery applied after it must not undo it.
NEWER: dict[str, Any] = {"metadata": {"verdict": "newer", "old": "back"}}


class Sweep:
    """Messages sent to one stack, in send order, and what each completion started from."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.initial: dict[str, dict[str, str]] = {}
        self.requests: dict[str, list[TagRequest]] = defaultdict(list)
        self.message_ids: list[str] = []
        self.applied: set[str] = set()  # messages whose write the API accepted

    def send(self, body: dict[str, Any]) -> str:
        [message_id] = send_bodies(self.harness.stack.queue_url, [body])
        time.sleep(0.003)  # the next send gets a SentTimestamp of its own
        self.requests[body["completion_id"]].append(TagRequest.model_validate(body))
        self.message_ids.append(message_id)
        return message_id


def sweep_spec(stack: StackResources, api: LocalOpenAIServer, tmp_path: Path) -> ContainerSpec:
    """One record per invocation, so a fault lasts exactly the rest of the invocation that wrote."""
    log = tmp_path / "function.log"
    return fleet_spec(stack, api, batch_size=1, function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS, function_log=log)


def faulty_fleet(spec: ContainerSpec, plan: Path) -> ContainerFleet:
    return ContainerFleet(spec, 1, environment_overrides={0: fault_environment(plan)})


def wait_for_points(fleet: ContainerFleet, plan: Path, completions: set[str], timeout_seconds: float) -> None:
    """Wait until the write of every planned completion has been faulted (or passed), starting a new faulty
    container whenever the last one killed itself."""
    deadline = time.monotonic() + timeout_seconds
    while {entry.completion_id for entry in read_journal(plan)} < completions:
        assert time.monotonic() < deadline, f"planned writes never happened: {completions - journaled(plan)}"
        if not fleet.pids():
            fleet.start_container(fault_environment(plan))
        time.sleep(0.2)


def journaled(plan: Path) -> set[str]:
    return {entry.completion_id for entry in read_journal(plan)}


def drain_with_healthy_containers(fleet: ContainerFleet) -> None:
    for _ in range(HEALTHY_CONTAINERS):
        fleet.start_container()
    assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)


def assert_ends_as_send_order(api: LocalOpenAIServer, sweep: Sweep) -> None:
    wrong = {}
    for completion, requests in sweep.requests.items():
        expected = expected_metadata(sweep.initial[completion], requests)
        actual = api.metadata_of(completion)
        if actual != expected:
            wrong[completion] = {"expected": expected, "actual": actual}
    assert not wrong, f"completions that do not end as their send order says: {wrong}"


def assert_every_message_ends_once(fleet: ContainerFleet, sweep: Sweep) -> dict[str, list[dict[str, Any]]]:
    """Each message: deleted, or dead-lettered with a retryable failure (never one whose write landed);
    its events all one and the same event. Returns the events by message id."""
    events = sweep.harness.events(len(sweep.message_ids), wait_seconds=8.0)
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_message[event["detail"]["message_id"]].append(event)
    assert set(by_message) <= set(sweep.message_ids), "an event for a message nobody sent"
    differing = {m: [e["detail"] for e in found] for m, found in by_message.items() if len(found) > 1}
    differing = {m: details for m, details in differing.items() if any(d != details[0] for d in details)}
    assert not differing, f"messages with two different outcomes: {differing}"

    dead = dead_lettered_identities(boto3.client("sqs"), sweep.harness.stack.dead_letter_queue_url)
    assert not dead & sweep.applied, "a message whose write was applied went to the dead-letter queue"
    for message_id in dead:
        [failure, *_] = by_message[message_id]
        assert failure["detail-type"] == "CompletionTagFailed" and failure["detail"]["error"]["retryable"]
    unended = set(sweep.message_ids) - fleet.deleted_message_ids - dead
    assert not unended, f"messages that never ended: {unended}"
    silent = set(sweep.message_ids) - set(by_message)
    assert not silent, f"messages that ended without an event (none of them is a duplicate): {silent}"
    return by_message


def test_approve_then_a_reject_whose_store_fails_after_its_write_then_approve_again_ends_approved(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    """The false duplicate: the reject's write lands, then every DynamoDB and EventBridge call of its
    invocation fails. The approve sent again afterwards is a new intent, not a duplicate of the first."""
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    completion = seed()
    plan = tmp_path / "faults.json"
    write_plan(plan, [])
    harness = Harness(stack, api)
    sweep = Sweep(harness)
    sweep.initial[completion] = {}
    approve = {"completion_id": completion, "metadata": {"verdict": "approve"}}
    spec = sweep_spec(stack, api, tmp_path)
    with faulty_fleet(spec, plan) as fleet:
        first = sweep.send(approve)
        assert fleet.wait_for_deleted([first], 60)
        write_plan(plan, [CrashPoint(completion, 0, "fail")])
        reject = sweep.send({"completion_id": completion, "metadata": {"verdict": "reject"}})
        wait_for_points(fleet, plan, {completion}, FAULT_PHASE_SECONDS)
        [entry] = read_journal(plan)
        assert entry.fired, "the reject's invocation made no AWS call after its write"
        again = sweep.send(approve)
        sweep.applied.update({first, reject})
        drain_with_healthy_containers(fleet)
        by_message = assert_every_message_ends_once(fleet, sweep)

    assert api.metadata_of(completion) == {"verdict": "approve"}
    assert [event["detail-type"] for event in by_message[again]] == ["CompletionTagged"]
    assert by_message[again][0]["detail"]["metadata"] == {"verdict": "approve"}
    assert_ends_as_send_order(api, sweep)


def sweep_points(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path, modes: list[str], action: Action
) -> None:
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    api.configure(latency=0.02)
    harness = Harness(stack, api)
    sweep = Sweep(harness)
    points: list[tuple[str, CrashPoint]] = []
    for mode in modes:
        for k in range(POINTS):
            completion = seed(INITIAL)
            sweep.initial[completion] = dict(INITIAL)
            points.append((mode, CrashPoint(completion, k, action)))
    plan = tmp_path / "faults.json"
    write_plan(plan, [point for _, point in points])
    spec = sweep_spec(stack, api, tmp_path)
    with faulty_fleet(spec, plan) as fleet:
        for mode, point in points:
            sweep.applied.add(sweep.send({"completion_id": point.completion_id, **FIRST[mode]}))
        wait_for_points(fleet, plan, {point.completion_id for _, point in points}, FAULT_PHASE_SECONDS)
        for _, point in points:
            sweep.send({"completion_id": point.completion_id, **NEWER})
        drain_with_healthy_containers(fleet)
        assert_every_message_ends_once(fleet, sweep)

    assert_ends_as_send_order(api, sweep)
    # The sweep covered every call after the write: the first points fired, the last ones came after it.
    fired = {entry.completion_id: entry for entry in read_journal(plan) if entry.fired}
    for mode in modes:
        of_mode = [point for m, point in points if m == mode]
        assert of_mode[0].completion_id in fired, f"{mode}: no AWS call after the write at all"
        assert of_mode[-1].completion_id not in fired, f"{mode}: more than {POINTS - 1} calls after the write"


def test_every_store_failure_after_the_write_ends_as_the_send_order(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    sweep_points(make_stack, api, seed, tmp_path, ["merge", "replace", "remove"], "fail")


@pytest.mark.parametrize(
    "mode", ["merge", pytest.param("replace", marks=pytest.mark.soak), pytest.param("remove", marks=pytest.mark.soak)]
)
def test_a_container_killed_at_every_point_after_the_write_ends_as_the_send_order(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path, mode: str
) -> None:
    sweep_points(make_stack, api, seed, tmp_path, [mode], "kill")
