"""Soak: a few hundred tag requests with every fault we can produce, through the real queue and handler.

The requests go to moto's queue (over HTTP) and are drained through the local stack's SQS event source
mapping into the real service (`create_service`), which talks to the local OpenAI server and to moto's
DynamoDB and EventBridge. The run ends when the queue is empty and nothing is in flight. Then every
message must be accounted for exactly once (README, "What happens to each message"), no request may have
been written twice, and every completion must hold what its requests asked for.

The mix (fixed seed, so the same messages and scripted faults every run):
- merges: several per completion, each setting keys no other request on that completion touches, some
  removing a seeded key, some changing nothing (no write expected). Disjoint keys make the final
  metadata independent of delivery order (a standard queue has none, and put-back records come back
  later), while still catching lost updates: two merges racing on one completion would drop a key;
- replaces (one per completion, one of them clearing everything);
- exact duplicates and same-request-other-key-order duplicates, of successes and of permanent failures
  (a copy of a merge that arrives after another merge on its completion has completed is a new intent:
  applied again, which changes nothing since its keys are still set);
- unknown completion ids (404 on read and on write), merges over the 16-key limit, invalid bodies of
  many shapes (each its own validation failure, copies included);
- "poison" completions the API always answers 503 for, which must end in the dead-letter queue;
- faults: random 500s (`error_rate`), 429 bursts with Retry-After / retry-after-ms, scripted 429s, 408s,
  409s, connection resets, and timeouts: a read answered too late, writes that time out (the client gives
  up after OPENAI_TIMEOUT_SECONDS), and reads timing out on every in-invocation attempt so the record is
  put back and redelivered.

Why every timed-out write is one the server did not apply: a client that times out cannot know whether
its write landed, so a timed-out write that did land could not be told apart from a double write, and "no
request written twice" could not be checked exactly. The write timeouts here
therefore answer 504 after the client has given up (the local server decides a fault before it applies
anything), and every other injected fault (500, 429, 408, 409, 503, reset) also stops a request before it
is applied. Only reads are ever answered late, which is harmless. So each request that changes a
completion must show up exactly once in the server's per-completion write count.

A write that the API applies after the client gave up used to be re-sent at once, and the first attempt
could then land after the next merge on the completion and undo it. The handler now puts such a write
back to settle and re-reads on the redelivery; `test_a_write_applied_after_its_timeout_does_not_undo_the_next_merge`
below is the reproduction that found it.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics

from completion_tagger.redrive import command as redrive
from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import MotoEndpoint
from local_stack.container import ContainerExited
from local_stack.event_source import SqsEventSourceMapping
from local_stack.expected_state import expected_metadata
from local_stack.fleet import ContainerFleet
from local_stack.observer import FAILED, TAGGED, ResultEvent, ResultObserver
from local_stack.provision import StackNames, StackResources, StackSettings
from local_stack.provision import provision as provision_stack
from local_stack.queue_peek import messages_on_queue
from tagger.composition import create_service
from tagger.config import Settings
from tagger.logic.service import TaggerService
from tagger.models import TagRequest, format_issued_at
from tests.integration.aws_faults import CrashPoint, fault_environment, read_journal, write_plan
from tests.integration.harness import API_KEY, StackMaker, dead_lettered_messages, fleet_spec

pytestmark = [pytest.mark.integration, pytest.mark.soak]

SEED = 20260611
MAX_RECEIVE_COUNT = 5  # the default (README, "Configuration")
VISIBILITY_TIMEOUT_SECONDS = 1  # put-back records come round again within the run
OPENAI_TIMEOUT_SECONDS = 0.5  # short, so slow answers are timeouts (with a margin for a loaded machine)
LATE = OPENAI_TIMEOUT_SECONDS + 0.3  # how late a "slow" answer comes
# The bound: the drain must finish within this (the whole test takes a few seconds more). pytest-timeout
# (the mark below) is the backstop should anything outside the drain loop hang.
DRAIN_TIMEOUT_SECONDS = 60.0
RETRYABLE_CODES = {"unauthorized", "rate_limited", "upstream_error", "timeout", "connection_error"}
# Kinds that share their completion with other requests: a copy of one can be a new intent (README, "Tag requests").
NEW_INTENT_KINDS = {"merge", "noop"}

MERGE_COMPLETIONS = 60
REPLACE_COMPLETIONS = 20
POISON_COMPLETIONS = 4


@dataclass(frozen=True)
class Message:
    """One message to send, and what the test knows about it."""

    body: str
    kind: str  # merge, noop, replace, not_found, too_many_keys, poison, invalid
    group: str | None  # messages of one group are the same request (same idempotency key); None: stands alone
    completion_id: str | None = None
    request: dict[str, Any] | None = None


@dataclass
class Plan:
    """The generated mix: completions to seed, messages to send, faults to script, and what must follow."""

    seeded: dict[str, dict[str, str]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    expected_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    expected_writes: Counter[str] = field(default_factory=Counter)
    poison: set[str] = field(default_factory=set)

    def add(self, kind: str, group: str | None, request: dict[str, Any]) -> Message:
        message = Message(json.dumps(request), kind, group, request.get("completion_id"), request)
        self.messages.append(message)
        return message


EXPECTED_OUTCOME = {
    "merge": "tagged",
    "noop": "tagged",
    "replace": "tagged",
    "not_found": "failed:not_found",
    "too_many_keys": "failed:invalid_request",
    "poison": "dead-lettered",
    "invalid": "failed:validation_error",
}


def make_plan(rng: random.Random) -> Plan:
    plan = Plan()
    groups = iter(range(10**6))

    def group() -> str:
        return f"g{next(groups)}"

    # Merges: disjoint keys per request, so the result does not depend on the order of delivery.
    merge_ids = [f"chatcmpl-soak-merge-{index:03d}" for index in range(MERGE_COMPLETIONS)]
    for index, completion_id in enumerate(merge_ids):
        initial = {"origin": "seed", "old": f"o{index}", "keep": "k"}
        plan.seeded[completion_id] = initial
        final = dict(initial)
        removes_old = rng.random() < 0.35
        count = rng.randint(3, 5)
        for number in range(count):
            keys = {f"m{number}{suffix}": f"v{rng.randrange(10**6)}" for suffix in "ab"[: rng.randint(1, 2)]}
            request: dict[str, Any] = {
                "completion_id": completion_id,
                "metadata": keys,
                "request_id": f"req-{index}-{number}",
            }
            if removes_old and number == count - 1:
                if rng.random() < 0.5:
                    request["metadata"] = {}  # a pure removal
                request["remove"] = ["old"]
                final.pop("old")
            final.update(request["metadata"])
            plan.add("merge", group(), request)
            plan.expected_writes[completion_id] += 1
        if rng.random() < 0.2:  # changes nothing: Tagged, but no write
            noop: dict[str, Any] = rng.choice([{"metadata": {"keep": "k"}}, {"metadata": {}, "remove": ["never-set"]}])
            plan.add("noop", group(), {"completion_id": completion_id, **noop})
        plan.expected_metadata[completion_id] = final

    # Replaces: one per completion (a replace and a merge on one completion would depend on their order).
    replace_ids = [f"chatcmpl-soak-replace-{index:03d}" for index in range(REPLACE_COMPLETIONS)]
    for index, completion_id in enumerate(replace_ids):
        plan.seeded[completion_id] = {"origin": "seed", "x": "1"}
        metadata = {} if index == 0 else {"label": rng.choice(["good", "bad", "ugly"]), "r": str(index)}
        plan.add("replace", group(), {"completion_id": completion_id, "metadata": metadata, "mode": "replace"})
        plan.expected_metadata[completion_id] = metadata
        plan.expected_writes[completion_id] += 1

    # Over the 16-key limit once merged: a permanent failure, nothing written.
    for index in range(2):
        completion_id = f"chatcmpl-soak-full-{index}"
        plan.seeded[completion_id] = {f"s{key}": "v" for key in range(15)}
        plan.expected_metadata[completion_id] = plan.seeded[completion_id]
        plan.add("too_many_keys", group(), {"completion_id": completion_id, "metadata": {"n1": "a", "n2": "b"}})

    # Unknown completions: 404 on the read (merge) or on the write (replace).
    for index in range(12):
        mode = "replace" if index % 3 == 0 else "merge"
        request = {"completion_id": f"chatcmpl-soak-unknown-{index}", "metadata": {"t": "1"}, "mode": mode}
        plan.add("not_found", group(), request)

    # Poison: the API answers 503 to everything about these, on every delivery.
    for index in range(POISON_COMPLETIONS):
        completion_id = f"chatcmpl-soak-poison-{index}"
        plan.seeded[completion_id] = {"origin": "seed"}
        plan.expected_metadata[completion_id] = {"origin": "seed"}
        plan.poison.add(completion_id)
        plan.faults.append({"status": 503, "count": 10_000, "completion_id": completion_id, "retry_after": 0})
        request = {"completion_id": completion_id, "metadata": {"p": str(index)}}
        if index == 0:  # as the upstream rule delivers it
            envelope = {"version": "0", "detail-type": "CompletionTagRequested", "source": "soak", "detail": request}
            plan.messages.append(Message(json.dumps(envelope), "poison", group(), completion_id, request))
        else:
            plan.add("poison", group(), request)
    # A copy of a poison request fails on its own: it never completed, so it is no duplicate.
    poison_copy = plan.messages[-1]
    plan.messages.append(Message(poison_copy.body, "poison", group(), poison_copy.completion_id, poison_copy.request))

    # Duplicates: exact copies, and the same request with its keys in another order.
    originals = [m for m in plan.messages if m.kind in ("merge", "noop", "replace", "not_found", "too_many_keys")]
    for original in rng.sample(originals, 45):
        assert original.request is not None
        if rng.random() < 0.5 and len(original.request["metadata"]) > 1:
            reordered = dict(original.request, metadata=dict(reversed(list(original.request["metadata"].items()))))
            body = json.dumps(dict(reversed(list(reordered.items()))), indent=1)
        else:
            body = original.body
        plan.messages.append(Message(body, original.kind, original.group, original.completion_id, original.request))

    # Invalid bodies: each is its own permanent failure, even an exact copy of another.
    some_merge = merge_ids[0]
    invalid_bodies = [
        "not json {",
        " ",
        "[]",
        "42",
        "null",
        '"a string"',
        json.dumps({"metadata": {"a": "b"}}),
        json.dumps({"completion_id": some_merge}),
        json.dumps({"completion_id": "bad/id", "metadata": {"a": "b"}}),
        json.dumps({"completion_id": some_merge, "metdata": {"a": "b"}}),
        json.dumps({"completion_id": some_merge, "metadata": {"n": 1}}),
        json.dumps({"completion_id": some_merge, "metadata": {"b": True}}),
        json.dumps({"completion_id": some_merge, "metadata": {"z": None}}),
        json.dumps({"completion_id": some_merge, "metadata": {f"k{i}": "v" for i in range(17)}}),
        json.dumps({"completion_id": some_merge, "metadata": {"k" * 65: "v"}}),
        json.dumps({"completion_id": some_merge, "metadata": {"k": "v" * 513}}),
        json.dumps({"completion_id": some_merge, "metadata": {}}),
        json.dumps({"completion_id": some_merge, "metadata": {"a": "b"}, "mode": "replace", "remove": ["x"]}),
        json.dumps({"completion_id": some_merge, "metadata": {"a": "b"}, "mode": "upsert"}),
        json.dumps({"completion_id": some_merge, "metadata": {"a": "b"}, "remove": ["a"]}),
        json.dumps({"completion_id": some_merge, "metadata": {"a": "b"}, "request_id": "r" * 129}),
        json.dumps({"detail-type": "CompletionTagRequested", "source": "soak", "detail": {"completion_id": 7}}),
        json.dumps({"completion_id": some_merge, "metadata": {"a": "b"}, "padding": "x" * 120_000}),
        "[" * 400 + "]" * 400,
    ]
    for body in [*invalid_bodies, invalid_bodies[9], invalid_bodies[13]]:
        plan.messages.append(Message(body, "invalid", None))

    # Scripted faults on healthy completions (each consumed by the first matching request).
    changed = [c for c in merge_ids if plan.expected_writes[c]]
    targets = iter(rng.sample(changed, 30))
    for _ in range(6):  # a write that times out and is not applied (504 after the client gave up)
        plan.faults.append({"status": 504, "method": "POST", "completion_id": next(targets), "delay": LATE})
    for _ in range(4):  # a read answered too late: a client-side timeout, harmless to retry
        plan.faults.append({"status": None, "method": "GET", "completion_id": next(targets), "delay": LATE})
    for _ in range(2):  # every in-invocation attempt times out: put back, redelivered, then fine
        plan.faults.append({"status": 504, "method": "GET", "completion_id": next(targets), "delay": LATE, "count": 3})
    for method in ("GET", "GET", "POST", "POST"):  # connection reset without a response
        plan.faults.append({"action": "reset", "method": method, "completion_id": next(targets)})
    for _ in range(4):  # 429 asking to wait 150 ms
        plan.faults.append({"status": 429, "retry_after_ms": 150, "completion_id": next(targets)})
    for status in (408, 409, 502, 503):
        plan.faults.append({"status": status, "method": "POST", "completion_id": next(targets)})
    for completion_id in rng.sample(replace_ids[1:], 3):  # timed-out replace writes, not applied
        plan.faults.append({"status": 504, "method": "POST", "completion_id": completion_id, "delay": LATE})

    rng.shuffle(plan.messages)
    return plan


class Function:
    """The real service behind the event source mapping, remembering which message ids it saw."""

    def __init__(self, service: TaggerService) -> None:
        self.service = service
        self.metrics = Metrics(namespace="CompletionTaggerSoak")
        self.invocations = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.invocations += 1
        try:
            return self.service.handle(event, context, self.metrics)
        finally:
            self.metrics.clear_metrics()


def send_all(sqs: Any, queue_url: str, messages: list[Message]) -> dict[str, Message]:
    sent: dict[str, Message] = {}
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": message.body} for index, message in enumerate(chunk)],
        )
        assert not response.get("Failed"), response.get("Failed")
        for entry in response["Successful"]:
            sent[entry["MessageId"]] = chunk[int(entry["Id"])]
    return sent


def dead_lettered(sqs: Any, queue_url: str) -> set[str]:
    ids: set[str] = set()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        if not messages:
            return ids
        ids.update(message["MessageId"] for message in messages)


@pytest.fixture
def soak_stack(moto: MotoEndpoint) -> StackResources:
    names = StackNames.with_prefix(f"soak{uuid.uuid4().hex[:8]}-")
    return provision_stack(
        names, StackSettings(max_receive_count=MAX_RECEIVE_COUNT, visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    )


@pytest.fixture
def soak_api(api: LocalOpenAIServer) -> Iterator[LocalOpenAIServer]:
    """The shared local server, with its knobs and faults put back afterwards for the tests that follow."""
    try:
        yield api
    finally:
        api.reset()


@pytest.mark.timeout(150)
def test_soak_every_message_ends_exactly_once_with_no_double_write(
    soak_stack: StackResources, soak_api: LocalOpenAIServer
) -> None:
    started = time.monotonic()
    stack, api = soak_stack, soak_api
    sqs = boto3.client("sqs")
    plan = make_plan(random.Random(SEED))
    for completion_id, metadata in plan.seeded.items():
        api.seed_completion(completion_id, metadata)
    for fault in plan.faults:
        api.inject_fault(**fault)
    # Random faults on top: 3 % of requests answer 500, and 2 of every 50 answer 429 with a Retry-After.
    api.configure(error_rate=0.03, burst_429_every=50, burst_429_length=2, retry_after=0.1, seed=SEED)
    settings = Settings(
        openai_base_url=api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.table_name,
        event_bus_name=stack.event_bus_name,
        max_receive_count=MAX_RECEIVE_COUNT,
        max_concurrency=10,
        retry_backoff_base_seconds=0,
        retry_backoff_max_seconds=VISIBILITY_TIMEOUT_SECONDS,
        openai_timeout_seconds=OPENAI_TIMEOUT_SECONDS,
        time_reserve_millis=500,
    )
    function = Function(create_service(settings))
    mapping = SqsEventSourceMapping(
        stack.queue_url, function, queue_arn=stack.queue_arn, batch_size=10, function_timeout_seconds=30
    )

    sent = send_all(sqs, stack.queue_url, plan.messages)
    assert len(sent) == len(plan.messages)
    drain_started = time.monotonic()
    drained = mapping.run(
        until=lambda: messages_on_queue(sqs, stack.queue_url) == 0, timeout_seconds=DRAIN_TIMEOUT_SECONDS
    )
    drain_seconds = time.monotonic() - drain_started
    assert drained, f"the queue did not drain within {DRAIN_TIMEOUT_SECONDS:g} s"

    events = ResultObserver(stack.observer_queue_url, sqs).drain()
    dead = dead_lettered(sqs, stack.dead_letter_queue_url)
    deleted = mapping.deleted_message_ids
    api_stats = api.stats()
    report = summary(plan, sent, events, dead, mapping, function, api_stats, drain_seconds)
    print(report)

    # ---- every message ended exactly once ----
    assert deleted.isdisjoint(dead)
    assert deleted | dead == set(sent), "messages neither deleted nor dead-lettered"
    by_message: dict[str, list[ResultEvent]] = {}
    for event in events:
        assert event.message_id in sent, f"an event for a message never sent: {event.detail}"
        by_message.setdefault(event.message_id, []).append(event)
    twice = {mid: [e.detail_type for e in evs] for mid, evs in by_message.items() if len(evs) > 1}
    assert not twice, f"messages with more than one result event: {twice}"

    outcomes = {mid: outcome(by_message.get(mid, []), mid in dead) for mid in sent}
    problems = []
    members: dict[str, list[str]] = {}
    for mid, message in sent.items():
        if message.group is None:
            if outcomes[mid] != EXPECTED_OUTCOME[message.kind]:
                problems.append(f"{message.kind} {message.body[:60]!r}: {outcomes[mid]}")
        else:
            members.setdefault(message.group, []).append(mid)
    for mids in members.values():
        kind = sent[mids[0]].kind
        ended = sorted(outcomes[mid] for mid in mids)
        if kind == "poison":
            expected = ["dead-lettered"] * len(mids)
        elif kind in NEW_INTENT_KINDS:
            # A copy is a duplicate only while nothing else has completed on its completion; after another
            # merge did, it is a new intent and applied again (its keys are still set: no second write).
            applied = max(1, ended.count(EXPECTED_OUTCOME[kind]))
            expected = sorted([EXPECTED_OUTCOME[kind]] * applied + ["duplicate"] * (len(mids) - applied))
        else:  # one message of the request did it; its copies were duplicates of a completed request
            expected = sorted([EXPECTED_OUTCOME[kind]] + ["duplicate"] * (len(mids) - 1))
        if ended != expected:
            problems.append(f"{kind} {sent[mids[0]].body[:80]!r} x{len(mids)}: {ended}, expected {expected}")
    assert not problems, "\n".join(problems)

    # Dead-lettered only with a retryable failure event, and only the poison.
    for mid in dead:
        (event,) = by_message[mid]
        assert event.retryable and event.error_code in RETRYABLE_CODES
        assert event.completion_id in plan.poison
    # Permanent failures say what went wrong; correlation ids are echoed.
    for mid, evs in by_message.items():
        request = sent[mid].request or {}
        for event in evs:
            if request.get("request_id"):
                assert event.detail.get("request_id") == request["request_id"]
            if event.detail_type == TAGGED:
                assert event.completion_id == request["completion_id"]
                metadata = event.detail["metadata"]
                assert request["metadata"].items() <= metadata.items()  # what it set is there...
                assert not set(request.get("remove", [])) & set(metadata)  # ...and what it removed is not
            if event.detail_type == FAILED and not event.retryable:
                assert event.error.get("message")
                assert len(json.dumps(event.detail)) < 8_000

    # ---- no request written twice (and none that should have been, left unwritten) ----
    writes = api_stats["updates_by_completion"]
    wrong_writes = {
        completion_id: f"{writes.get(completion_id, 0)} writes, expected {plan.expected_writes[completion_id]}"
        for completion_id in set(writes) | set(plan.expected_writes)
        if writes.get(completion_id, 0) != plan.expected_writes[completion_id]
    }
    assert not wrong_writes, wrong_writes

    # ---- each completion holds what its requests asked for ----
    wrong_metadata = {
        completion_id: metadata_difference(api.metadata_of(completion_id), expected)
        for completion_id, expected in plan.expected_metadata.items()
        if api.metadata_of(completion_id) != expected
    }
    assert not wrong_metadata, wrong_metadata

    # ---- the faults really happened ----
    statuses = api_stats["statuses"]
    for status in ("404", "408", "409", "429", "500", "502", "503", "504", "reset"):
        assert statuses.get(status), f"no {status} answered: {statuses}"
    assert {"scripted", "burst_429", "error_rate"} <= set(api_stats["faults"])
    unfired = [fault for fault in api.app.faults.pending() if fault["completion_id"] not in plan.poison]
    assert not unfired, f"scripted faults that never fired: {unfired}"
    assert mapping.stats.records_put_back > 0
    print(f"soak: whole test {time.monotonic() - started:.1f} s")


def metadata_difference(actual: dict[str, str], expected: dict[str, str]) -> str:
    missing = sorted(expected.keys() - actual.keys())
    unexpected = sorted(actual.keys() - expected.keys())
    changed = sorted(key for key in expected.keys() & actual.keys() if expected[key] != actual[key])
    return f"missing {missing}, unexpected {unexpected}, changed {changed}"


def outcome(events: list[ResultEvent], in_dead_letter_queue: bool) -> str:
    """How one message ended, in the terms of the README's "What happens to each message"."""
    if in_dead_letter_queue:
        if len(events) == 1 and events[0].detail_type == FAILED and events[0].retryable:
            return "dead-lettered"
        return f"dead-lettered without its retryable failure event ({[e.detail_type for e in events]})"
    if not events:
        return "duplicate"
    (event,) = events
    if event.detail_type == TAGGED:
        return "tagged"
    if event.retryable:
        return f"deleted after a retryable failure event ({event.error_code})"
    return f"failed:{event.error_code}"


def summary(
    plan: Plan,
    sent: dict[str, Message],
    events: list[ResultEvent],
    dead: set[str],
    mapping: SqsEventSourceMapping,
    function: Function,
    api_stats: dict[str, Any],
    drain_seconds: float,
) -> str:
    kinds = Counter(message.kind for message in sent.values())
    copies = len(sent) - len({m.group for m in sent.values() if m.group}) - kinds["invalid"]
    stats = mapping.stats
    return "\n".join(
        [
            f"soak: {len(sent)} messages ({dict(sorted(kinds.items()))}; {copies} duplicates) "
            f"drained in {drain_seconds:.1f} s",
            f"  events {dict(Counter(e.detail_type for e in events))}, dead-lettered {len(dead)}",
            f"  invocations {function.invocations}, deliveries {stats.records_delivered}, "
            f"put back {stats.records_put_back}, failed invocations {stats.failed_invocations}",
            f"  API requests {api_stats['total']}, statuses {dict(sorted(api_stats['statuses'].items()))}, "
            f"faults {api_stats['faults']}, writes {sum(api_stats['updates_by_completion'].values())}",
        ]
    )


@pytest.mark.timeout(60)
def test_a_write_applied_after_its_timeout_does_not_undo_the_next_merge(
    soak_stack: StackResources, soak_api: LocalOpenAIServer
) -> None:
    """Minimal reproduction of what the soak avoids by design (its timed-out writes are never applied).

    Two merges for one completion in one batch. The API applies the first merge's write only after the
    client gave up waiting (a slow server); the handler re-sends that write, and the second merge then reads
    and writes. When the first attempt finally lands, it puts back the metadata from before the second merge.
    """
    stack, api = soak_stack, soak_api
    sqs = boto3.client("sqs")
    completion_id = f"chatcmpl-late-write-{uuid.uuid4().hex[:8]}"
    api.seed_completion(completion_id, {"a": "1"})
    late = 4 * OPENAI_TIMEOUT_SECONDS
    api.inject_fault(None, method="POST", completion_id=completion_id, delay=late)  # answered, and applied, late
    settings = Settings(
        openai_base_url=api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.table_name,
        event_bus_name=stack.event_bus_name,
        retry_backoff_base_seconds=0,
        openai_timeout_seconds=OPENAI_TIMEOUT_SECONDS,
        time_reserve_millis=500,
    )
    mapping = SqsEventSourceMapping(
        stack.queue_url, Function(create_service(settings)), queue_arn=stack.queue_arn, batching_window_seconds=0.5
    )
    sqs.send_message_batch(
        QueueUrl=stack.queue_url,
        Entries=[
            {"Id": "1", "MessageBody": json.dumps({"completion_id": completion_id, "metadata": {"b": "2"}})},
            {"Id": "2", "MessageBody": json.dumps({"completion_id": completion_id, "metadata": {"c": "3"}})},
        ],
    )
    started = time.monotonic()

    assert mapping.run(until=lambda: messages_on_queue(sqs, stack.queue_url) == 0, timeout_seconds=30)
    time.sleep(max(started + late + 1.0 - time.monotonic(), 0))  # the late write has landed by now

    tagged = [e for e in ResultObserver(stack.observer_queue_url, sqs).drain() if e.detail_type == TAGGED]
    assert len(tagged) == 2  # both merges were reported done ...
    assert api.metadata_of(completion_id) == {"a": "1", "b": "2", "c": "3"}  # ... so both must have stuck


# ----- the model-based soak: containers, producers' clocks, sender batches, store faults and a redrive -----

MODEL_CONTAINERS = 3
MODEL_MAX_RECEIVE_COUNT = 5  # the default (README, "Configuration")
MODEL_FUNCTION_TIMEOUT_SECONDS = 6.0
MODEL_VISIBILITY_TIMEOUT_SECONDS = 8  # above the function timeout, as on AWS
MODEL_DRAIN_SECONDS = 180.0
MODEL_KEYS = ["verdict", "reviewer", "stage", "topic", "team"]


def random_body(rng: random.Random) -> dict[str, Any]:
    """A merge, a removal or a replace over a few keys, so requests for one completion conflict."""
    if rng.random() < 0.15:
        named = rng.sample(MODEL_KEYS, rng.randint(0, 3))
        return {"metadata": {key: rng.choice("abc") for key in named}, "mode": "replace"}
    named = rng.sample(MODEL_KEYS, rng.randint(1, 3))
    removed = rng.sample(named, rng.randint(0, len(named) - 1))
    return {"metadata": {key: rng.choice("abc") for key in named if key not in removed}, "remove": removed}


def send_in_batches(sqs: Any, queue_url: str, bodies: list[dict[str, Any]], rng: random.Random) -> list[str]:
    """As producers send: SendMessageBatch calls of 1 to 10 (each call's messages share a SentTimestamp)."""
    ids: list[str] = []
    start = 0
    while start < len(bodies):
        chunk = bodies[start : start + rng.randint(1, 10)]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": json.dumps(body)} for index, body in enumerate(chunk)],
        )
        assert not response.get("Failed"), response["Failed"]
        by_entry = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        ids += [by_entry[str(index)] for index in range(len(chunk))]
        start += len(chunk)
    return ids


def keep_containers_running(fleet: Any, count: int, environment: dict[str, str], until: Any, timeout: float) -> bool:
    """Wait for `until()`, starting a container (with `environment`) whenever fewer than `count` run."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            return False
        for _ in range(count - len(fleet.pids())):
            fleet.start_container(environment)
        time.sleep(0.25)
    return True


@pytest.mark.timeout(420)
def test_model_based_soak_producer_clocks_batches_store_faults_and_a_redrive_end_as_issued_order(
    make_stack: StackMaker, api: LocalOpenAIServer, tmp_path: Path
) -> None:
    """Random conflicting requests over a few completions, each stamped `issued_at` by its producer and sent
    out of that order, in SendMessageBatch calls; 500s from the API; DynamoDB and EventBridge failing (or the
    container killed) after some writes; two completions whose writes fail until their requests are
    dead-lettered, then newer requests for them, then a client-side redrive. Every completion must end as
    its requests applied one by one in `issued_at` order (`local_stack.expected_state`), and no message
    may get two different outcomes."""

    rng = random.Random(20261204)
    sqs = boto3.client("sqs")
    stack = make_stack(
        visibility_timeout_seconds=MODEL_VISIBILITY_TIMEOUT_SECONDS, max_receive_count=MODEL_MAX_RECEIVE_COUNT
    )
    api.configure(latency=0.05, error_rate=0.1, seed=11)
    initial = {f"chatcmpl-model-{uuid.uuid4().hex[:12]}": {"team": "seed", "outside": "x"} for _ in range(10)}
    for completion_id, metadata in initial.items():
        api.seed_completion(completion_id, metadata)
    completions = list(initial)
    doomed, healthy = completions[:2], completions[2:]

    # The producers' clock: request n was decided at base + n ms; they are sent shuffled within windows of 8.
    base = int((time.time() - 120) * 1_000_000)
    decided = [
        {"completion_id": rng.choice(completions), **random_body(rng), "issued_at": format_issued_at(base + n * 1000)}
        for n in range(80)
    ]
    send_order: list[dict[str, Any]] = []
    for start in range(0, len(decided), 8):
        window = decided[start : start + 8]
        rng.shuffle(window)
        send_order += window

    plan = tmp_path / "faults.json"
    points = [CrashPoint(c, rng.randint(0, 3), "kill" if n < 2 else "fail") for n, c in enumerate(healthy)]
    write_plan(plan, points)
    faults = fault_environment(plan)
    for completion_id in doomed:  # every write fails: their requests run out of deliveries
        api.inject_fault(503, count=100_000, method="POST", completion_id=completion_id, retry_after=0)
    spec = fleet_spec(
        stack,
        api,
        max_receive_count=MODEL_MAX_RECEIVE_COUNT,
        batch_size=4,
        function_timeout_seconds=MODEL_FUNCTION_TIMEOUT_SECONDS,
        function_log=tmp_path / "function.log",
    )
    observer = ResultObserver(stack.observer_queue_url, sqs)
    every_container = dict.fromkeys(range(MODEL_CONTAINERS), faults)
    with ContainerFleet(spec, MODEL_CONTAINERS, environment_overrides=every_container) as fleet:
        message_ids = send_in_batches(sqs, stack.queue_url, send_order, rng)
        requests = dict(zip(message_ids, send_order, strict=True))

        def drained() -> bool:
            return not fleet.busy() and messages_on_queue(sqs, stack.queue_url) == 0

        assert keep_containers_running(fleet, MODEL_CONTAINERS, faults, drained, MODEL_DRAIN_SECONDS)
        dead_messages = dead_lettered_messages(sqs, stack.dead_letter_queue_url)
        dead = set(dead_messages.values())
        doomed_ids = {m for m, body in requests.items() if body["completion_id"] in doomed}
        # Requests whose writes always failed are dead-lettered (one that changes nothing needs no write, and
        # ends tagged). So is a request whose last delivery was in a batch of a SIGKILLed container: SQS moves
        # it on its own, with no event (the function never got to end it), even when the function had already
        # re-queued a copy of it that ends later. The fleet names the abandoned messages by their own ids.
        fired = {entry.completion_id for entry in read_journal(plan) if entry.fired}
        killed = {point.completion_id for point in points if point.action == "kill"} & fired
        killed_ids = {m for m, body in requests.items() if body["completion_id"] in killed}
        abandoned = {
            dead_messages.get(message_id, message_id)
            for report in fleet.drain()
            if isinstance(report, ContainerExited) and report.cause == "killed"
            for message_id in report.abandoned
        }
        assert dead & doomed_ids, "the requests whose writes always failed are dead-lettered"

        api.clear_faults()
        newer = [
            {"completion_id": c, **random_body(rng), "issued_at": format_issued_at(base + (100 + n) * 1000)}
            for n, c in enumerate(doomed)
        ]
        newer_ids = send_in_batches(sqs, stack.queue_url, newer, rng)
        requests.update(zip(newer_ids, newer, strict=True))
        assert keep_containers_running(fleet, MODEL_CONTAINERS, faults, drained, MODEL_DRAIN_SECONDS)
        before_redrive = observer.drain()
        queues = ["--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]
        assert redrive.command_line(["--local", *queues]) == 0
        assert keep_containers_running(fleet, MODEL_CONTAINERS, faults, drained, MODEL_DRAIN_SECONDS)
        assert fleet.dead_lettered_ids() == set()
        after_redrive = observer.drain()

    by_completion: dict[str, list[TagRequest]] = {}
    for body in requests.values():
        by_completion.setdefault(body["completion_id"], []).append(TagRequest.model_validate(body))
    wrong = {}
    for completion_id, of_completion in by_completion.items():
        in_issued_order = sorted(of_completion, key=lambda request: request.issued_at_micros() or 0)
        expected = expected_metadata(initial[completion_id], in_issued_order)
        if api.metadata_of(completion_id) != expected:
            wrong[completion_id] = {"expected": expected, "actual": api.metadata_of(completion_id)}
    assert not wrong, f"completions that do not end as their requests in issued_at order: {wrong}"

    outcomes: dict[str, set[str]] = {}
    for event in before_redrive:
        outcomes.setdefault(str(event.message_id), set()).add(json.dumps(event.detail, sort_keys=True))
    assert {m: o for m, o in outcomes.items() if len(o) > 1} == {}, "a message with two different outcomes"
    # Besides those, a request killed on its last delivery (SQS moves it with no event), and one whose
    # deliveries ran out while it waited for its busy completion and whose last one met one of the API's
    # random 500s: the function dead-lettered it, saying so with a retryable failure, like the doomed ones.
    for message_id in dead - killed_ids - abandoned:
        assert {json.loads(detail)["error"]["retryable"] for detail in outcomes[message_id]} == {True}
    # The redrive gave each a new life: tagged, as a new message (or, for a re-queued copy, under the
    # identity the copy carried).
    redriven = {str(event.message_id) for event in after_redrive}
    assert {event.detail_type for event in after_redrive} == {TAGGED}
    assert len(redriven) == len(dead) and redriven & set(requests) <= dead
    for event in after_redrive:
        outcomes.setdefault(str(event.message_id), set()).add(json.dumps(event.detail, sort_keys=True))
    # A message may end silently only as a duplicate: the same request as another message.
    payloads = {m: TagRequest.model_validate(body).idempotency_payload() for m, body in requests.items()}
    silent = {m for m in requests if m not in outcomes}
    twins = {m for m in silent if any(o != m and payloads[o] == payloads[m] for o in requests)}
    assert silent == twins, "a message ended without an event and is no duplicate"
