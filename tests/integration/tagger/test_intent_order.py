"""The newest intent wins, whatever the path a request took (README, "Tag requests": Modes; docs/design.md,
"Concurrency and ordering"): the producer CLI's file order across containers, a redrive, and EventBridge
delivering an envelope again or late. Containers are separate processes polling one queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from completion_tagger.cli import cli
from completion_tagger.redrive import command as redrive
from local_openai.server import LocalOpenAIServer
from local_stack.fleet import ContainerFleet
from tagger.models import format_issued_at
from tagger.ports import ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP
from tests.integration.harness import (
    Harness,
    Seeder,
    StackMaker,
    dead_lettered_identities,
    fleet_spec,
    send_bodies,
)

pytestmark = pytest.mark.integration

DRAIN_TIMEOUT_SECONDS = 120.0
VISIBILITY_TIMEOUT_SECONDS = 12  # longer than the containers' function timeout (10 s), as on AWS
VERDICTS = ("approve", "reject")


def verdict(completion: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"completion_id": completion, "metadata": {"verdict": value}, **fields}


def envelope(detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    """What an EventBridge rule with an SQS target delivers: each delivery is a new SQS message."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CompletionTagRequested",
        "source": "upstream.reviews",
        "account": "123456789012",
        "time": "2026-12-04T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def issued(seconds_ago: float) -> str:
    return format_issued_at(int((time.time() - seconds_ago) * 1_000_000))


def test_a_files_last_line_for_each_completion_wins_across_three_containers(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    """Consecutive lines flip a completion's verdict; the sender sends them ten to a SendMessageBatch (one
    SentTimestamp), and three containers take the batches: each completion ends as its last line says."""
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    api.configure(latency=0.05)
    completions = [seed() for _ in range(10)]
    lines: list[dict[str, Any]] = []
    last: dict[str, str] = {}
    for number, completion in enumerate(completions):
        flips = [VERDICTS[(number + step) % 2] for step in range(3)]  # approve/reject/approve or the reverse
        lines += [verdict(completion, value) for value in flips]
        last[completion] = flips[-1]
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, batch_size=3, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, 3) as fleet:
        result = CliRunner().invoke(cli, ["send", str(requests), "--queue-url", stack.queue_url])
        assert result.exit_code == 0, result.output
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert fleet.dead_lettered_ids() == set()
        assert fleet.deleted_more_than_once() == {}
        events = harness.events(len(lines) - len(completions), wait_seconds=8.0)

    assert {event["detail-type"] for event in events} == {"CompletionTagged"}
    # One outcome per message: every event is a CompletionTagged. The same event may come twice when PutEvents'
    # answer is late (README, "Result events": consumers dedupe on message_id), so events are not counted.
    assert len({event["detail"]["message_id"] for event in events}) >= len(lines) - len(completions)
    ends = {completion: api.metadata_of(completion).get("verdict") for completion in completions}
    wrong = {completion: ends[completion] for completion in completions if ends[completion] != last[completion]}
    assert not wrong, f"{len(wrong)} of {len(completions)} completions do not end as their last line: {wrong}"


def test_a_redriven_request_stays_older_than_one_sent_after_it_was_dead_lettered(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    """The approve fails until its last delivery and is dead-lettered; a reject sent later is applied; the
    approve is redriven with the client-side redrive (a new message): it is still the older request."""
    stack = make_stack(visibility_timeout_seconds=2, max_receive_count=2)
    completion = seed()
    sqs = boto3.client("sqs")
    harness = Harness(stack, api)
    spec = fleet_spec(stack, api, max_receive_count=2, batch_size=1, function_log=tmp_path / "function.log")
    api.inject_fault(503, count=10_000, method="POST", completion_id=completion, retry_after=0)
    with ContainerFleet(spec, 1) as fleet:
        [approve] = send_bodies(stack.queue_url, [verdict(completion, "approve")])
        dead_letter_queue = stack.dead_letter_queue_url
        assert fleet.wait_for(
            lambda: approve in dead_lettered_identities(sqs, dead_letter_queue), 60, poll_seconds=0.5
        ), "the approve was not dead-lettered"
        api.clear_faults()
        time.sleep(0.01)
        [reject] = send_bodies(stack.queue_url, [verdict(completion, "reject")])
        assert fleet.wait_for_deleted([reject], 60)
        assert api.metadata_of(completion) == {"verdict": "reject"}

        moved = redrive.command_line(
            ["--local", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]
        )
        assert moved == 0
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert fleet.dead_lettered_ids() == set()
        events = harness.events(3, wait_seconds=5.0)

    assert api.metadata_of(completion) == {"verdict": "reject"}
    tagged = [event["detail"] for event in events if event["detail-type"] == "CompletionTagged"]
    # The redriven approve is a new message (or, if a copy was dead-lettered, carries the approve's identity).
    redriven = [detail for detail in tagged if detail["message_id"] != reject]
    assert len(redriven) == 1, "the redriven approve ends as CompletionTagged (overtaken on every key)"
    assert redriven[0]["metadata"] == {"verdict": "reject"}


@pytest.mark.parametrize("late", ["the same envelope again", "an older envelope"])
def test_an_eventbridge_delivery_of_an_older_request_never_undoes_a_newer_one(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path, late: str
) -> None:
    """EventBridge retries a target on its own, and may deliver an older event after a newer one: each
    delivery is a new SQS message, but the request's `issued_at` (in `detail`) keeps its place."""
    stack = make_stack(visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS)
    completion = seed()
    harness = Harness(stack, api)
    approve = envelope(verdict(completion, "approve", issued_at=issued(20)), "0f1e2d3c-approve")
    reject = envelope(verdict(completion, "reject", issued_at=issued(10)), "0f1e2d3c-reject")
    deliveries = [approve, reject, approve] if late == "the same envelope again" else [reject, approve]
    spec = fleet_spec(stack, api, batch_size=1, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, 1) as fleet:
        message_ids = []
        for body in deliveries:  # one at a time: each applied before the next is delivered
            [message_id] = send_bodies(stack.queue_url, [body])
            assert fleet.wait_for_deleted([message_id], 60)
            message_ids.append(message_id)
        assert fleet.dead_lettered_ids() == set()
        events = harness.events(len(deliveries), wait_seconds=3.0)

    assert api.metadata_of(completion) == {"verdict": "reject"}
    by_message = {event["detail"]["message_id"]: event for event in events}
    assert len(by_message) == len(events) == len(deliveries), "one event per delivery (each a message of its own)"
    # The late delivery is overtaken on every key: it changes nothing and still ends as CompletionTagged.
    last = by_message[message_ids[-1]]
    assert last["detail-type"] == "CompletionTagged"
    assert last["detail"]["metadata"] == {"verdict": "reject"}


def test_a_redriven_copy_keeps_the_order_of_the_message_it_copies(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    """A record that only had to wait on its last delivery is re-queued as a copy carrying its original's
    message id and SentTimestamp (README, "What happens to each message"). Should that copy be dead-lettered
    and redriven, it is still as old as its original: a reject sent after the original stays.

    The copy is put on the dead-letter queue as the function makes it (same body, the two attributes), since
    running a copy into the dead-letter queue for real takes a lease held past a whole last delivery."""
    stack = make_stack(visibility_timeout_seconds=2, max_receive_count=2)
    completion = seed()
    sqs = boto3.client("sqs")
    original_sent_ms = int(time.time() * 1000) - 10_000
    spec = fleet_spec(stack, api, max_receive_count=2, batch_size=1, function_log=tmp_path / "function.log")
    with ContainerFleet(spec, 1) as fleet:
        [reject] = send_bodies(stack.queue_url, [verdict(completion, "reject")])  # after the original, before the copy
        assert fleet.wait_for_deleted([reject], 60)
        time.sleep(0.01)
        sqs.send_message(
            QueueUrl=stack.dead_letter_queue_url,
            MessageBody=json.dumps(verdict(completion, "approve")),
            MessageAttributes={
                ORIGINAL_MESSAGE_ID: {"DataType": "String", "StringValue": "0b7c2f1e-approve-original"},
                ORIGINAL_SENT_TIMESTAMP: {"DataType": "Number", "StringValue": str(original_sent_ms)},
            },
        )
        queues = ["--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]
        assert redrive.command_line(["--local", *queues]) == 0
        assert fleet.wait_until_drained(DRAIN_TIMEOUT_SECONDS)
        assert fleet.dead_lettered_ids() == set()

    assert api.metadata_of(completion) == {"verdict": "reject"}
