"""No tag is ever lost: several Lambda-like containers, each a separate process, on one queue.

Containers are spawned interpreters with their own handler import and clients (`local_stack.fleet`), so
nothing held in one process' memory can pass for the per-completion lease. Requests are sent one call
at a time, a few milliseconds apart, so their SQS SentTimestamps follow the send order; the final
metadata of every completion must then equal applying its requests one by one in that order
(`local_stack.expected_state`), and every message must end exactly once.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_openai.server import LocalOpenAIServer
from local_stack.expected_state import expected_metadata
from local_stack.fleet import ContainerFleet
from local_stack.provision import StackResources
from tagger.models import TagRequest
from tests.integration.harness import Harness, Seeder, StackMaker, fleet_spec

pytestmark = pytest.mark.integration

CONTAINERS = 3
DRAIN_TIMEOUT_SECONDS = 120.0
# Longer than the containers' function timeout (10 s), as on AWS (6 × it): a message never comes back
# while an invocation still holds it. Put-back records come back sooner: the function sets their visibility.
VISIBILITY_TIMEOUT_SECONDS = 12


class Sent:
    """Requests sent in order, one SendMessage call each, remembered per completion."""

    def __init__(self, stack: StackResources) -> None:
        self._queue_url = stack.queue_url
        self._sqs = boto3.client("sqs")
        self.message_ids: list[str] = []
        self.by_completion: dict[str, list[TagRequest]] = {}
        self.requests: dict[str, TagRequest] = {}

    def send(self, body: dict[str, Any]) -> str:
        time.sleep(0.003)  # SentTimestamp has millisecond resolution: keep every send in a millisecond of its own
        message_id = self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(body))["MessageId"]
        self.message_ids.append(message_id)
        request = TagRequest.model_validate(body)
        self.by_completion.setdefault(request.completion_id, []).append(request)
        self.requests[message_id] = request
        return message_id

    def has_twin(self, message_id: str) -> bool:
        """Whether another message asked for the same thing on the same completion."""
        request = self.requests[message_id]
        return any(
            other != message_id and twin.idempotency_payload() == request.idempotency_payload()
            for other, twin in self.requests.items()
        )


def assert_each_completion_ends_as_its_send_order(
    api: LocalOpenAIServer, sent: Sent, initial: dict[str, dict[str, str]]
) -> None:
    wrong = {}
    for completion, requests in sent.by_completion.items():
        expected = expected_metadata(initial[completion], requests)
        actual = api.metadata_of(completion)
        if actual != expected:
            wrong[completion] = {"expected": expected, "actual": actual}
    assert not wrong, f"completions that do not match their send order: {wrong}"


def assert_every_message_ended_once_as_tagged(harness: Harness, fleet: ContainerFleet, sent: Sent) -> None:
    """Deleted once, never dead-lettered, and one CompletionTagged event each — except a duplicate (the same
    request as another message, with nothing completed on the completion in between), which ends silently."""
    assert fleet.dead_lettered_ids() == set()
    assert fleet.deleted_more_than_once() == {}
    # A record that only had to wait on its last delivery is re-queued as a copy (a message of its own, deleted
    # in its turn) that carries its original's message id into the events (README, "What happens to each message").
    assert set(sent.message_ids) <= fleet.deleted_message_ids
    events = harness.events(len(sent.message_ids), wait_seconds=10.0)
    per_message = Counter(event["detail"]["message_id"] for event in events)
    assert set(per_message.values()) == {1}, "no message may have two result events"
    assert set(per_message) <= set(sent.message_ids)
    silent = set(sent.message_ids) - set(per_message)
    assert all(sent.has_twin(message_id) for message_id in silent), "a message without an event that is no duplicate"
    assert {event["detail-type"] for event in events} == {"CompletionTagged"}


def test_conflicting_requests_in_different_batches_and_containers_follow_the_send_order(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    api.configure(latency=0.1)
    disjoint, removal, mixed, verdict, hot = (seed(), seed({"a": "1", "b": "2"}), seed({"x": "0"}), seed(), seed())
    initial = {disjoint: {}, removal: {"a": "1", "b": "2"}, mixed: {"x": "0"}, verdict: {}, hot: {}}
    scenarios: list[list[dict[str, Any]]] = [
        [{"completion_id": disjoint, "metadata": {f"d{n}": str(n)}} for n in range(6)],
        [
            {"completion_id": removal, "metadata": {"c": "3"}},
            {"completion_id": removal, "metadata": {"d": "4"}, "remove": ["a"]},
            {"completion_id": removal, "metadata": {"a": "back"}},
            {"completion_id": removal, "metadata": {"e": "5"}, "remove": ["c", "d"]},
        ],
        [
            {"completion_id": mixed, "metadata": {"m1": "1"}},
            {"completion_id": mixed, "metadata": {"r": "1"}, "mode": "replace"},
            {"completion_id": mixed, "metadata": {"m2": "2"}},
            {"completion_id": mixed, "metadata": {"s": "2"}, "mode": "replace"},
            {"completion_id": mixed, "metadata": {"m3": "3"}},
        ],
        [{"completion_id": verdict, "metadata": {"verdict": value}} for value in ("approve", "reject", "approve")],
        [{"completion_id": hot, "metadata": {f"h{n}": str(n)}} for n in range(14)],
    ]
    # Interleave the scenarios (each keeps its own order), so conflicting requests land in different batches.
    rng = random.Random(7)
    queues = [list(reversed(scenario)) for scenario in scenarios]
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, batch_size=3, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, CONTAINERS) as fleet:
        sent = Sent(stack)
        while any(queues):
            sent.send(rng.choice([queue for queue in queues if queue]).pop())
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert_every_message_ended_once_as_tagged(harness, fleet, sent)
        took_batches = [c for c in fleet.stats().containers if c.counters.invocations > 0]
        assert len(took_batches) > 1, "the batches should have been shared between containers"

    assert_each_completion_ends_as_its_send_order(api, sent, initial)
    assert api.metadata_of(verdict) == {"verdict": "approve"}
    assert len(api.metadata_of(hot)) == 14


def test_an_older_request_put_back_after_a_500_never_undoes_the_newer_one(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    api.configure(latency=0.1)
    completions = [seed() for _ in range(4)]
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, batch_size=1, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, CONTAINERS) as fleet:
        for completion in completions:  # whichever write comes first is answered 500: put back to settle
            api.inject_fault(500, count=1, method="POST", completion_id=completion, retry_after=0)
        sent = Sent(stack)
        for completion in completions:
            sent.send({"completion_id": completion, "metadata": {"verdict": "approve", "by": "ana"}})
            sent.send({"completion_id": completion, "metadata": {"verdict": "reject"}})
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert_every_message_ended_once_as_tagged(harness, fleet, sent)
        assert fleet.stats().totals.records_put_back >= len(completions)

    assert_each_completion_ends_as_its_send_order(api, sent, {completion: {} for completion in completions})
    assert all(api.metadata_of(completion)["verdict"] == "reject" for completion in completions)


def test_a_container_killed_mid_update_blocks_its_completion_only_until_the_lease_expires(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=8)  # the function timeout is 6 s here
    api.configure(latency=1.0)
    completion = seed({"origin": "seed"})
    log = tmp_path / "function.log"
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, batch_size=1, function_timeout_seconds=6, function_log=log)
    with ContainerFleet(spec, CONTAINERS) as fleet:
        sent = Sent(stack)
        first = sent.send({"completion_id": completion, "metadata": {"step": "first", "a": "1"}})
        assert fleet.wait_for(lambda: any(first in ids for ids in fleet.busy().values()), 30)
        time.sleep(0.5)  # it holds the lease and waits on its read
        [victim] = [index for index, ids in fleet.busy().items() if first in ids]
        victim_pid = fleet.pids()[victim]
        fleet.kill(victim)
        sent.send({"completion_id": completion, "metadata": {"step": "second", "b": "2"}})

        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert_every_message_ended_once_as_tagged(harness, fleet, sent)

    assert_each_completion_ends_as_its_send_order(api, sent, {completion: {"origin": "seed"}})
    # Someone waited for the dead container's lease, and the log says whose it was.
    waits = [json.loads(line) for line in log.read_text().splitlines() if "waiting for its lease" in line]
    assert any(wait["lease_holder"].startswith(f"local-{victim_pid}/") for wait in waits)


def test_while_the_lease_store_is_down_records_go_back_untouched_and_are_applied_once_it_is_back(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    api.configure(latency=0.05)
    completions = [seed() for _ in range(3)]
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, batch_size=4, function_log=tmp_path / "function.log")
    unreachable = {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9"}  # nothing listens there
    with ContainerFleet(spec, 1, environment_overrides={0: unreachable}) as fleet:
        sent = Sent(stack)
        for step in range(3):
            for completion in completions:
                sent.send({"completion_id": completion, "metadata": {f"k{step}": "v", "last": str(step)}})
        everything_put_back = len(sent.message_ids)
        assert fleet.wait_for(lambda: fleet.stats().totals.records_put_back >= everything_put_back, 60)
        assert fleet.wait_for(lambda: not fleet.busy(), 30)
        fleet.kill(0)
        assert api.stats()["total"] == 0, "no API call may be made without the lease"

        for _ in range(CONTAINERS):  # DynamoDB is back
            fleet.start_container()
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert_every_message_ended_once_as_tagged(harness, fleet, sent)

    assert_each_completion_ends_as_its_send_order(api, sent, {completion: {} for completion in completions})


@pytest.mark.soak
def test_model_based_soak_random_conflicting_requests_with_faults_end_as_the_send_order(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    """Random merges, removes and replaces over a few completions and keys, random and scripted 500s (some
    putting records back), three containers: every completion must end as its requests applied in send order."""
    rng = random.Random(20261202)
    keys = ["verdict", "reviewer", "stage", "topic", "team"]
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS, max_receive_count=10)
    api.configure(latency=0.05, error_rate=0.15, seed=5)
    initial = {seed({"team": "seed", "outside": "x"}): {"team": "seed", "outside": "x"} for _ in range(6)}
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, max_receive_count=10, batch_size=4, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, CONTAINERS) as fleet:
        for completion in initial:  # the first write on each completion fails every attempt: put back
            api.inject_fault(500, count=3, method="POST", completion_id=completion, retry_after=0)
        sent = Sent(stack)
        for _ in range(72):
            completion = rng.choice(list(initial))
            if rng.random() < 0.15:
                named = rng.sample(keys, rng.randint(0, 3))
                body: dict[str, Any] = {"metadata": {key: rng.choice("abc") for key in named}, "mode": "replace"}
            else:
                named = rng.sample(keys, rng.randint(1, 3))
                removed = rng.sample(named, rng.randint(0, len(named) - 1))
                body = {"metadata": {key: rng.choice("abc") for key in named if key not in removed}, "remove": removed}
            sent.send({"completion_id": completion, **body})
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert_every_message_ended_once_as_tagged(harness, fleet, sent)
        assert fleet.stats().totals.records_put_back > 0, "the faults should have put records back"

    assert_each_completion_ends_as_its_send_order(api, sent, initial)
