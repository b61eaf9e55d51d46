"""`completion-tagger send --wait` against moto's server, the local OpenAI server and a fleet of containers
(separate processes): every line ends as tagged, failed, duplicate or not sent; the results file says so line
by line; the temporary rule and queue are gone afterwards, Ctrl-C included.

moto does not enforce queue policies, so that EventBridge may send to the temporary queue only through the
policy `send --wait` sets is not proven here; the policy's shape is checked instead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from completion_tagger import send_tag_requests
from completion_tagger.cli import cli
from completion_tagger.waiting.send_and_wait import ResultsLocation
from completion_tagger.waiting.subscription import NAME_PREFIX, ResultSubscription, event_pattern
from local_openai.server import LocalOpenAIServer
from local_stack.fleet import ContainerFleet
from local_stack.provision import StackResources
from tests.integration.harness import Seeder, StackMaker, fleet_spec

pytestmark = pytest.mark.integration


def stack_names(stack: StackResources) -> list[str]:
    return [
        "--queue-url",
        stack.queue_url,
        "--results-bus",
        stack.event_bus_name,
        "--dead-letter-queue-url",
        stack.dead_letter_queue_url,
        "--idempotency-table",
        stack.table_name,
    ]


def leftovers(stack: StackResources) -> list[str]:
    """Temporary rules on the stack's bus and temporary queues still there."""
    rules = boto3.client("events").list_rules(EventBusName=stack.event_bus_name, NamePrefix=NAME_PREFIX)["Rules"]
    queues = boto3.client("sqs").list_queues(QueueNamePrefix=NAME_PREFIX).get("QueueUrls", [])
    return [rule["Name"] for rule in rules] + queues


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["send", *args], input=stdin, catch_exceptions=False)


def tag(completion: str, value: str = "v3") -> str:
    return json.dumps({"completion_id": completion, "metadata": {"eval-set": value}})


def test_wait_reports_every_line_and_cleans_up(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=12)
    tagged, other = seed(), seed()
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "\n".join(
            [
                tag(tagged),
                tag("chatcmpl-unknown0000"),  # not stored: not_found
                json.dumps({"completion_id": other, "metdata": {}}),  # invalid: never sent
                tag(other),
                tag(tagged),  # the same request as line 1: one of the two is a duplicate
            ]
        )
        + "\n"
    )
    results = tmp_path / "results.jsonl"
    with ContainerFleet(fleet_spec(stack, api, function_log=tmp_path / "function.log"), 2):
        result = invoke(str(requests), *stack_names(stack), "--wait", "--timeout", "60", "--results", str(results))

    assert result.exit_code == 1, result.output
    by_line = {record["line"]: record for record in map(json.loads, results.read_text().splitlines())}
    assert sorted(by_line) == [1, 2, 3, 4, 5]
    assert by_line[2]["outcome"] == "failed" and by_line[2]["code"] == "not_found"
    assert by_line[3]["outcome"] == "not_sent" and by_line[3]["request_id"] is None
    assert by_line[4]["outcome"] == "tagged"
    assert sorted([by_line[1]["outcome"], by_line[5]["outcome"]]) == ["duplicate", "tagged"]
    assert all(by_line[n]["message_id"] for n in (1, 2, 4, 5))
    assert all(by_line[n]["request_id"].endswith(f"-{n}") for n in (1, 2, 4, 5))
    assert "not_found" in result.output and "duplicate" in result.output  # the table, failures by code
    assert leftovers(stack) == []


def test_a_rerun_of_tagged_lines_ends_as_duplicates_and_exits_0(
    make_stack: StackMaker, api: LocalOpenAIServer, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack(visibility_timeout_seconds=12)
    completions = [seed(), seed()]
    location = ResultsLocation(stack.event_bus_name, stack.dead_letter_queue_url, stack.table_name)
    requests = [{"completion_id": c, "metadata": {"eval-set": "v3"}} for c in completions]
    with ContainerFleet(fleet_spec(stack, api, function_log=tmp_path / "function.log"), 1):
        first = send_tag_requests(
            requests, queue_url=stack.queue_url, wait=True, timeout_seconds=60, results_location=location
        )
        again = send_tag_requests(
            requests, queue_url=stack.queue_url, wait=True, timeout_seconds=60, results_location=location
        )
    assert first.ok and first.results is not None
    assert [line.outcome for line in first.results.lines] == ["tagged", "tagged"]
    assert again.ok and again.results is not None
    assert [line.outcome for line in again.results.lines] == ["duplicate", "duplicate"]
    assert leftovers(stack) == []


def test_without_results_in_time_the_lines_are_no_result_and_nothing_is_left(
    make_stack: StackMaker, seed: Seeder, tmp_path: Path
) -> None:
    stack = make_stack()
    results = tmp_path / "results.jsonl"
    result = invoke(  # no fleet: nothing answers
        "-", *stack_names(stack), "--wait", "--timeout", "2", "--results", str(results), stdin=tag(seed()) + "\n"
    )
    assert result.exit_code == 1
    [record] = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["outcome"] == "no_result" and record["message_id"]
    assert "timed out" in result.output
    assert leftovers(stack) == []


def test_ctrl_c_while_waiting_removes_the_rule_and_the_queue(make_stack: StackMaker, tmp_path: Path) -> None:
    stack = make_stack()
    requests = tmp_path / "requests.jsonl"
    requests.write_text(tag("chatcmpl-waits000001") + "\n")
    results = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "completion_tagger", "send", str(requests), *stack_names(stack)]
    process = subprocess.Popen(  # no fleet: nothing answers, so it waits until interrupted
        [*command, "--wait", "--results", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not leftovers(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
        subscription = leftovers(stack)
        assert len(subscription) == 2, "the rule and the queue exist while it waits"
        time.sleep(0.5)  # it has sent and is following
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert leftovers(stack) == []
    [record] = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["outcome"] == "no_result" and record["message_id"]


def test_the_queue_policy_lets_only_the_runs_rule_send(make_stack: StackMaker) -> None:
    stack = make_stack()
    with ResultSubscription(
        boto3.client("events"), boto3.client("sqs"), stack.event_bus_name, event_pattern("completion-tagger", "r", [])
    ) as subscription:
        assert subscription.queue_url is not None
        policy: dict[str, Any] = json.loads(
            boto3.client("sqs").get_queue_attributes(QueueUrl=subscription.queue_url, AttributeNames=["Policy"])[
                "Attributes"
            ]["Policy"]
        )
        [statement] = policy["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": subscription.rule_arn}}
    assert leftovers(stack) == []
