"""`completion-tagger send` and `send_tag_requests` against moto's server and the local OpenAI server:
a queue, a stack's outputs, a bus with the upstream rule, `--select` with paging, invalid lines,
entries failing inside a batch, standard input."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from completion_tagger import UsageError, send_tag_requests
from completion_tagger.cli import cli
from completion_tagger.delivery import RetryPolicy
from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import MotoEndpoint
from local_stack.provision import StackResources
from tagger.logic.parsing import parse_tag_request
from tagger.models import issued_at_instant
from tests.integration.harness import API_KEY

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(attempts=3, initial_seconds=0.01, max_seconds=0.02)


@pytest.fixture
def queue_url(moto: MotoEndpoint) -> str:
    return str(boto3.client("sqs").create_queue(QueueName=f"send-{uuid.uuid4().hex[:10]}")["QueueUrl"])


def drain(queue_url: str) -> list[str]:
    """Every message body on the queue (each received once, then deleted)."""
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies.extend(message["Body"] for message in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return bodies


def request(completion: str, **fields: Any) -> str:
    return json.dumps({"completion_id": completion, "metadata": {"eval-set": "v3"}, **fields})


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["send", *args], input=stdin, catch_exceptions=False)


def test_queues_every_valid_line_and_names_every_invalid_one(queue_url: str, tmp_path: Path) -> None:
    lines = [
        request("chatcmpl-a", request_id="mine-1"),
        "",
        request("chatcmpl-b"),
        json.dumps({"completion_id": "chatcmpl-c", "metdata": {"k": "v"}}),
        "not json",
        request("chatcmpl-d", mode="replace", remove=["x"]),
        request("chatcmpl-e", metadata={"n": 1}),
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = invoke(str(path), "--queue-url", queue_url, "--request-id-prefix", "backfill")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 4: invalid: metadata: Field required; metdata: unknown field (allowed: completion_id, issued_at, "
        "metadata, mode, remove, request_id)",
        "line 5: invalid: body: not valid JSON (expected ident at line 1 column 2)",
        "line 6: invalid: remove: not allowed with mode 'replace' (replace already drops unlisted keys)",
        "line 7: invalid: metadata.n: Input should be a valid string",
    ]
    assert "read 6, sent 2, invalid 4, failed 0" in result.stdout
    sent = sorted((parse_tag_request(body) for body in drain(queue_url)), key=lambda r: r.completion_id)
    assert [(r.completion_id, r.request_id) for r in sent] == [("chatcmpl-a", "mine-1"), ("chatcmpl-b", "backfill-3")]


def test_exit_0_when_every_line_is_sent_from_standard_input(queue_url: str) -> None:
    stdin = "".join(request(f"chatcmpl-{n}") + "\n" for n in range(25))

    result = invoke("-", "--queue-url", queue_url, stdin=stdin)

    assert result.exit_code == 0, result.output
    assert "read 25, sent 25, invalid 0, failed 0" in result.stdout
    assert sorted(parse_tag_request(body).completion_id for body in drain(queue_url)) == sorted(
        f"chatcmpl-{n}" for n in range(25)
    )


def test_dry_run_validates_and_sends_nothing(queue_url: str) -> None:
    result = invoke("-", "--dry-run", stdin=request("chatcmpl-a") + "\n{}\n")

    assert result.exit_code == 1
    assert "line 2: invalid: completion_id: Field required" in result.stderr
    assert "read 2, valid 1, invalid 1  (dry run: nothing sent)" in result.stdout
    assert drain(queue_url) == []


def test_ids_file_with_tags_removes_and_mode(queue_url: str, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# reviewed today\nchatcmpl-1\n\nchatcmpl-2\nnot/an/id\n")

    result = invoke("--ids", str(ids), "--tag", "reviewed=true", "--remove", "pending", "--queue-url", queue_url)

    assert result.exit_code == 1
    assert result.stderr.startswith("line 5: invalid: completion_id: String should match pattern")
    sent = {parse_tag_request(body).completion_id: parse_tag_request(body) for body in drain(queue_url)}
    assert sorted(sent) == ["chatcmpl-1", "chatcmpl-2"]
    assert sent["chatcmpl-2"].metadata == {"reviewed": "true"}
    assert sent["chatcmpl-2"].remove == ["pending"]
    assert sent["chatcmpl-2"].request_id is not None and sent["chatcmpl-2"].request_id.endswith("-4")


def test_stack_name_sends_to_the_queue_in_the_stacks_outputs(queue_url: str) -> None:
    stack_name = f"tagger-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"TagRequestQueueUrl": {"Value": {"Ref": "Queue"}}},
    }
    boto3.client("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    stack_queue = outputs[0]["OutputValue"]

    result = invoke("-", "--stack-name", stack_name, stdin=request("chatcmpl-s") + "\n")

    assert result.exit_code == 0, result.output
    assert [parse_tag_request(body).completion_id for body in drain(stack_queue)] == ["chatcmpl-s"]


def test_unknown_stack_is_a_usage_error(moto: MotoEndpoint) -> None:
    result = invoke("-", "--stack-name", "no-such-stack", stdin=request("chatcmpl-s") + "\n")

    assert result.exit_code == 2
    assert "no-such-stack" in result.stderr


def test_event_bus_requests_reach_the_queue_through_the_upstream_rule(stack: StackResources) -> None:
    stdin = "".join(request(f"chatcmpl-bus-{n}") + "\n" for n in range(12))

    result = invoke("-", "--event-bus", stack.event_bus_name, "--source", "backfill.job", stdin=stdin)

    assert result.exit_code == 0, result.output
    bodies = [json.loads(body) for body in drain(stack.queue_url)]
    assert {body["detail-type"] for body in bodies} == {"CompletionTagRequested"}
    assert {body["source"] for body in bodies} == {"backfill.job"}
    # What the function reads from each message: the request inside the EventBridge envelope.
    ids = sorted(parse_tag_request(json.dumps(body)).completion_id for body in bodies)
    assert ids == sorted(f"chatcmpl-bus-{n}" for n in range(12))


@pytest.fixture
def stored(api: LocalOpenAIServer) -> Callable[..., None]:
    def make(count: int, metadata: dict[str, str], model: str = "gpt-test", prefix: str = "chatcmpl-sel") -> None:
        for n in range(count):
            api.seed_completion(f"{prefix}-{n:04d}", metadata, model=model)

    return make


@pytest.fixture
def openai_env(api: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> LocalOpenAIServer:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
    return api


def test_select_tags_every_match_across_pages(
    queue_url: str, openai_env: LocalOpenAIServer, stored: Callable[..., None]
) -> None:
    stored(230, {"review": "pending"})
    stored(15, {"review": "done"}, prefix="chatcmpl-other")
    stored(5, {"review": "pending"}, model="gpt-other", prefix="chatcmpl-model")
    openai_env.inject_fault(429, method="GET", retry_after=0.01)  # the first page is retried

    result = invoke(
        "--select",
        "metadata[review]=pending",
        "--model",
        "gpt-test",
        "--tag",
        "review=reviewed",
        "--queue-url",
        queue_url,
    )

    assert result.exit_code == 0, result.output
    requests = [parse_tag_request(body) for body in drain(queue_url)]
    assert sorted(r.completion_id for r in requests) == [f"chatcmpl-sel-{n:04d}" for n in range(230)]
    assert {tuple(r.metadata.items()) for r in requests} == {(("review", "reviewed"),)}
    assert openai_env.stats()["requests"]["GET /v1/chat/completions"] == 4  # one 429, then 3 pages of 100
    assert API_KEY not in result.output


def test_select_with_a_refused_key_sends_nothing_and_never_prints_the_key(
    queue_url: str, api: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)

    result = invoke("--select", "metadata[review]=pending", "--tag", "a=b", "--queue-url", queue_url)

    assert result.exit_code == 1
    assert "401" in result.stderr
    assert "sk-wrong-key-0123456789" not in result.output
    assert drain(queue_url) == []


class BatchFaults:
    """Makes SQS refuse chosen entries of the next SendMessageBatch calls, as SQS does under load.

    Hooks on the boto3 session remove the entries from the request before it leaves (so moto never
    stores them) and add them to the response's `Failed` list, as SQS reports a failed entry. A call
    whose every entry fails is answered without reaching moto, which refuses an empty batch.
    """

    def __init__(self, session: boto3.session.Session, plan: list[dict[str, bool]]) -> None:
        self.plan = plan  # per call: entry Id -> SenderFault
        self.calls = 0
        self._dropped: dict[str, bool] = {}
        self._kept = 0
        session.events.register("before-parameter-build.sqs.SendMessageBatch", self._drop)
        session.events.register("before-call.sqs.SendMessageBatch", self._answer_if_nothing_left)  # type: ignore[arg-type]
        session.events.register("after-call.sqs.SendMessageBatch", self._report)

    def _drop(self, params: dict[str, Any], **_: Any) -> None:
        self._dropped = self.plan[self.calls] if self.calls < len(self.plan) else {}
        self.calls += 1
        kept = [entry for entry in params["Entries"] if entry["Id"] not in self._dropped]
        self._kept = len(kept)
        params["Entries"] = kept or params["Entries"][:1]

    def _answer_if_nothing_left(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if self._kept:
            return None
        return SimpleNamespace(status_code=200, headers={}), {"Successful": []}

    def _report(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", []).extend(
            {"Id": entry_id, "SenderFault": sender_fault, "Code": "Refused" if sender_fault else "InternalError"}
            for entry_id, sender_fault in self._dropped.items()
        )


def test_entries_failing_inside_a_batch_are_retried_and_permanent_ones_reported(queue_url: str) -> None:
    session = boto3.session.Session()
    # Call 1: entries 3 and 7 fail retryably, entry 5 permanently; call 2 (the retry): entry 7 again.
    faults = BatchFaults(session, [{"3": False, "7": False, "5": True}, {"7": False}])

    report = send_tag_requests(
        [request(f"chatcmpl-{n}") for n in range(1, 11)], queue_url=queue_url, session=session, retry=FAST_RETRY
    )

    assert report.sent == 9
    assert [(item.number, item.reason) for item in report.failed] == [(5, "Refused: no message")]
    assert report.calls == faults.calls == 3
    assert sorted(parse_tag_request(body).completion_id for body in drain(queue_url)) == sorted(
        f"chatcmpl-{n}" for n in range(1, 11) if n != 5
    )


def test_an_entry_still_failing_after_the_last_attempt_is_reported(queue_url: str) -> None:
    session = boto3.session.Session()
    BatchFaults(session, [{"2": False}] * FAST_RETRY.attempts)

    report = send_tag_requests(
        [request("chatcmpl-1"), request("chatcmpl-2")], queue_url=queue_url, session=session, retry=FAST_RETRY
    )

    assert not report.ok
    assert report.sent == 1
    assert [item.number for item in report.failed] == [2]
    assert report.problem_lines() == ["line 2: not sent: InternalError: no message"]


def test_a_queue_that_does_not_exist_stops_the_run(moto: MotoEndpoint) -> None:
    missing = f"{moto.url}/123456789012/no-such-queue"
    stdin = "".join(request(f"chatcmpl-{n}") + "\n" for n in range(15))

    result = invoke("-", "--queue-url", missing, stdin=stdin)

    assert result.exit_code == 1
    assert "stopped early:" in result.stdout
    assert "sent 0" in result.stdout
    assert result.stderr.splitlines()[0].startswith("line 1: not sent:")


def test_requests_go_ten_to_a_call(queue_url: str) -> None:
    session = boto3.session.Session()
    calls: list[str] = []
    session.events.register("before-send.sqs.*", lambda **kwargs: calls.append(kwargs["event_name"]))

    report = send_tag_requests((request(f"chatcmpl-{n}") for n in range(500)), queue_url=queue_url, session=session)

    assert report.ok and report.sent == 500
    assert calls == ["before-send.sqs.SendMessageBatch"] * 50
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "500"


def test_console_script_is_installed_and_sends(queue_url: str, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(request("chatcmpl-a") + "\n" + '{"completion_id": "chatcmpl-b"}\n')
    script = Path(sys.executable).with_name("completion-tagger")

    result = subprocess.run(
        [str(script), "send", str(path), "--queue-url", queue_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "line 2: invalid: metadata: Field required" in result.stderr
    assert [parse_tag_request(body).completion_id for body in drain(queue_url)] == ["chatcmpl-a"]


def test_python_m_forms_of_the_other_commands_still_work() -> None:
    for module in ("local_stack", "local_openai", "completion_tagger"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, (module, result.stderr)


class AnswersPutEventsAsAws:
    """PutEvents answered as AWS answers it for a bus that does not exist: success, `FailedEntryCount` 0,
    and the events dropped. moto raises instead, which is why the sender's check is tested this way."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.calls = 0
        session.events.register("before-call.events.PutEvents", self._answer)  # type: ignore[arg-type]

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        self.calls += 1
        entries = [{"EventId": str(uuid.uuid4())} for _ in json.loads(params["body"])["Entries"]]
        return SimpleNamespace(status_code=200, headers={}), {"FailedEntryCount": 0, "Entries": entries}


def test_a_bus_that_does_not_exist_is_found_out_before_anything_is_sent(moto: MotoEndpoint) -> None:
    session = boto3.session.Session()
    aws = AnswersPutEventsAsAws(session)

    with pytest.raises(UsageError, match=r"event bus no-such-bus does not exist \(in "):
        send_tag_requests([request("chatcmpl-1"), request("chatcmpl-2")], event_bus="no-such-bus", session=session)

    assert aws.calls == 0  # nothing was put: on AWS it would have "succeeded" and been lost


def test_a_bus_that_does_not_exist_is_a_usage_error_on_the_command_line(moto: MotoEndpoint) -> None:
    result = invoke("-", "--event-bus", "no-such-bus", stdin=request("chatcmpl-1") + "\n")

    assert result.exit_code == 2
    assert "event bus no-such-bus does not exist" in result.stderr


def tagger_stack_around(stack: StackResources, source_pattern: str = "*") -> str:
    """A CloudFormation stack shaped like the tagger's (its parameters and bus output), naming the local bus."""
    name = f"tagger-{uuid.uuid4().hex[:8]}"
    template = {
        "Parameters": {
            "UpstreamEventSource": {"Type": "String", "Default": source_pattern},
            "UpstreamDetailType": {"Type": "String", "Default": "CompletionTagRequested"},
        },
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"EventBusName": {"Value": stack.event_bus_name}},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def test_stack_name_with_event_bus_sends_through_the_stacks_bus(stack: StackResources) -> None:
    stack_name = tagger_stack_around(stack, source_pattern="backfill.*")

    result = invoke("-", "--stack-name", stack_name, "--event-bus", "--source", "backfill.job", stdin=request("c1"))

    assert result.exit_code == 0, result.output
    assert f"event bus {stack.event_bus_name}" in result.stdout
    [body] = drain(stack.queue_url)
    assert json.loads(body)["source"] == "backfill.job"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "other.app"], "--source other.app: stack .* routes only sources matching 'backfill.\\*'"),
        (["--source", "backfill.job", "--detail-type", "Other"], "--detail-type Other: stack .* routes only"),
    ],
)
def test_events_the_stacks_upstream_rule_would_not_route_are_a_usage_error(
    stack: StackResources, args: list[str], message: str
) -> None:
    stack_name = tagger_stack_around(stack, source_pattern="backfill.*")

    result = invoke("-", "--stack-name", stack_name, "--event-bus", *args, stdin=request("chatcmpl-1"))

    assert result.exit_code == 2
    assert re.search(message, result.stderr), result.stderr
    assert drain(stack.queue_url) == []


# ----- order: every line sent carries an issued_at, increasing in file order -----


def issued_at_by_line(bodies: list[str], prefix: str) -> dict[int, str]:
    """Line number (from the request id `<prefix>-<line>`) -> the issued_at its message carries."""
    found: dict[int, str] = {}
    for body in bodies:
        sent = parse_tag_request(body)
        assert sent.request_id is not None and sent.issued_at is not None, body
        found[int(sent.request_id.removeprefix(f"{prefix}-"))] = sent.issued_at
    return found


def assert_strictly_increasing_in_line_order(stamps: dict[int, str]) -> None:
    instants = [issued_at_instant(stamps[number]) for number in sorted(stamps)]
    assert all(earlier < later for earlier, later in itertools.pairwise(instants)), stamps


def test_every_line_is_stamped_in_file_order_and_a_lines_own_issued_at_is_kept(queue_url: str, tmp_path: Path) -> None:
    own = {7: "2026-01-02T03:04:05.000006Z", 19: "2020-01-01T00:00:00Z"}
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(request("chatcmpl-same", **({"issued_at": own[n]} if n in own else {})) + "\n" for n in range(1, 36))
    )

    result = invoke(str(path), "--queue-url", queue_url, "--request-id-prefix", "ord")

    assert result.exit_code == 0, result.output
    stamps = issued_at_by_line(drain(queue_url), "ord")
    assert sorted(stamps) == list(range(1, 36))
    assert {number: stamps[number] for number in own} == own
    # The others share one completion and 4 SendMessageBatch calls (shared SentTimestamps): their stamps order them.
    assert_strictly_increasing_in_line_order({n: stamp for n, stamp in stamps.items() if n not in own})


def test_a_retried_entry_keeps_the_stamp_it_was_given_before_its_first_try(queue_url: str) -> None:
    session = boto3.session.Session()
    tries: list[dict[str, str]] = []  # per call: entry Id -> body, as built before any entry is dropped
    session.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: tries.append({entry["Id"]: entry["MessageBody"] for entry in params["Entries"]}),
    )
    BatchFaults(session, [{"3": False, "7": False}, {"7": False}])

    report = send_tag_requests(
        [request("chatcmpl-r") for _ in range(10)],
        queue_url=queue_url,
        session=session,
        retry=FAST_RETRY,
        request_id_prefix="retry",
    )

    assert report.ok and report.calls == 3
    assert [sorted(call) for call in tries[1:]] == [["3", "7"], ["7"]]
    assert tries[1]["3"] == tries[0]["3"]
    assert tries[2]["7"] == tries[1]["7"] == tries[0]["7"]
    stamps = issued_at_by_line(drain(queue_url), "retry")
    assert stamps[7] == parse_tag_request(tries[0]["7"]).issued_at  # what landed is what the first try carried
    assert_strictly_increasing_in_line_order(stamps)  # line 7, sent last, still sorts between 6 and 8


def test_event_bus_requests_are_stamped_inside_detail(stack: StackResources) -> None:
    stdin = "".join(request("chatcmpl-bus-same") + "\n" for _ in range(15))

    result = invoke("-", "--event-bus", stack.event_bus_name, "--request-id-prefix", "busord", stdin=stdin)

    assert result.exit_code == 0, result.output
    events = [json.loads(body) for body in drain(stack.queue_url)]
    assert all("issued_at" not in event for event in events)
    stamps = issued_at_by_line([json.dumps(event["detail"]) for event in events], "busord")
    assert sorted(stamps) == list(range(1, 16))
    assert_strictly_increasing_in_line_order(stamps)


# ----- input that is not clean UTF-8 -----


def test_a_latin1_byte_costs_its_line_only_and_the_run_reads_to_the_end(queue_url: str, tmp_path: Path) -> None:
    lines = [request(f"chatcmpl-{n}").encode() for n in range(1, 1001)]
    lines[500] = '{"completion_id": "chatcmpl-501", "metadata": {"note": "café"}}'.encode("latin-1")
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = invoke(str(path), "--queue-url", queue_url)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 501: invalid: body: not valid utf-8 text (byte 0xe9 at byte 60 of the line); "
        "give --encoding if the file is not UTF-8"
    ]
    assert "read 1000, sent 999, invalid 1, failed 0" in result.stdout
    assert len(drain(queue_url)) == 999


def test_encoding_names_a_file_without_a_byte_order_mark(queue_url: str, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes('{"completion_id": "chatcmpl-1", "metadata": {"note": "café"}}\n'.encode("latin-1"))

    result = invoke(str(path), "--encoding", "latin-1", "--queue-url", queue_url)

    assert result.exit_code == 0, result.output
    assert [parse_tag_request(body).metadata for body in drain(queue_url)] == [{"note": "café"}]


@pytest.mark.parametrize(
    ("encode", "what"),
    [
        (lambda text: "\ufeff".encode() + text.encode(), "UTF-8 with a byte order mark (Notepad)"),
        (lambda text: text.replace("\n", "\r\n").encode("utf-16"), "UTF-16 with a byte order mark (PowerShell's >)"),
    ],
)
def test_files_with_a_byte_order_mark_are_read_in_their_encoding(
    queue_url: str, tmp_path: Path, encode: Callable[[str], bytes], what: str
) -> None:
    path = tmp_path / "requests.jsonl"
    text = "".join(f'{{"completion_id": "chatcmpl-{n}", "metadata": {{"note": "ça 👍"}}}}\n' for n in range(12))
    path.write_bytes(encode(text))

    result = invoke(str(path), "--queue-url", queue_url)

    assert result.exit_code == 0, (what, result.output)
    assert "read 12, sent 12, invalid 0, failed 0" in result.stdout
    assert {tuple(parse_tag_request(body).metadata.items()) for body in drain(queue_url)} == {(("note", "ça 👍"),)}


def test_an_ids_file_line_that_is_not_utf8_is_named(queue_url: str, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"chatcmpl-1\nchatcmpl-\xff\nchatcmpl-3\n")

    result = invoke("--ids", str(ids), "--tag", "a=b", "--queue-url", queue_url)

    assert result.exit_code == 1
    assert result.stderr.startswith("line 2: invalid: body: not valid utf-8 text (byte 0xff")
    assert sorted(parse_tag_request(body).completion_id for body in drain(queue_url)) == ["chatcmpl-1", "chatcmpl-3"]


def test_an_unknown_encoding_is_a_usage_error(queue_url: str) -> None:
    result = invoke("-", "--encoding", "no-such-codec", "--queue-url", queue_url, stdin=request("chatcmpl-1"))

    assert result.exit_code == 2
    assert "--encoding: unknown encoding 'no-such-codec'" in result.stderr


# ----- what no retry can fix stops the run at the first call, with the cause -----


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials anywhere botocore looks (environment, files, instance metadata); returns a config file."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws/sso/cache either
    return config


def two_hundred_lines() -> list[str]:
    return [request(f"chatcmpl-{n}") for n in range(1, 201)]


def test_no_credentials_stop_the_run_at_the_first_call(queue_url: str, no_aws_credentials: Path) -> None:
    report = send_tag_requests(two_hundred_lines(), queue_url=queue_url, session=boto3.session.Session())

    assert report.calls == 1
    assert report.stopped is not None and report.stopped.startswith("AWS credentials: Unable to locate credentials")
    assert (report.read, report.sent, [item.number for item in report.failed]) == (10, 0, list(range(1, 11)))
    assert report.summary_lines()[-1].endswith("nothing after line 10 was read")


def test_an_expired_sso_session_stops_the_run_and_says_to_log_in(queue_url: str, no_aws_credentials: Path) -> None:
    no_aws_credentials.write_text(
        "[profile gone]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Producer\n"
        "region = us-east-1\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n"
        "sso_region = us-east-1\n"
    )

    report = send_tag_requests(
        two_hundred_lines(), queue_url=queue_url, session=boto3.session.Session(profile_name="gone")
    )

    assert report.calls == 1
    assert report.stopped is not None and report.stopped.startswith("AWS SSO session: ")
    assert "aws sso login" in report.stopped
    assert report.read == 10


def test_an_unreachable_endpoint_stops_the_run_at_the_first_call(
    moto: MotoEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    report = send_tag_requests(two_hundred_lines(), queue_url=f"http://127.0.0.1:{port}/123456789012/q")

    assert report.calls == 1
    assert report.stopped is not None and report.stopped.startswith("cannot reach AWS: Could not connect")
    assert report.read == 10 and len(report.failed) == 10


def test_a_queue_that_does_not_exist_names_every_line_it_read(moto: MotoEndpoint) -> None:
    missing = f"{moto.url}/123456789012/no-such-queue"
    stdin = "".join(request(f"chatcmpl-{n}") + "\n" for n in range(25))

    result = invoke("-", "--queue-url", missing, stdin=stdin)

    assert result.exit_code == 1
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == [f"line {n}" for n in range(1, 11)]
    assert "read 10, sent 0, invalid 0, failed 10" in result.stdout
    assert "nothing after line 10 was read" in result.stdout


def test_a_key_with_a_stray_newline_is_used_without_it_and_never_printed(
    queue_url: str, api: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch, stored: Callable[..., None]
) -> None:
    stored(3, {"review": "pending"})
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY + "\n")
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)

    result = invoke("--select", "metadata[review]=pending", "--tag", "a=b", "--queue-url", queue_url)

    assert result.exit_code == 0, result.output
    assert len(drain(queue_url)) == 3
    assert API_KEY not in result.output


def test_a_key_httpx_refuses_to_send_is_never_printed_in_any_form(
    queue_url: str, api: LocalOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "0123456789abcdef\n0123456789abcdef"  # a line break inside: an illegal header value
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)

    result = invoke("--select", "metadata[review]=pending", "--tag", "a=b", "--queue-url", queue_url)

    assert result.exit_code == 1
    assert "Illegal header value" in result.stderr
    assert "0123456789abcdef" not in result.output
    assert api.stats()["requests"].get("GET /v1/chat/completions", 0) == 0
    assert drain(queue_url) == []


def queue_count(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_send_prints_its_summary_and_the_lines_not_sent(
    queue_url: str, moto: MotoEndpoint, stop: signal.Signals
) -> None:
    script = Path(sys.executable).with_name("completion-tagger")
    process = subprocess.Popen(
        [str(script), "send", "-", "--queue-url", queue_url, "--request-id-prefix", "int"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdin is not None
    # A producer that wrote 25 lines and is still working on the next: two full batches go out, five wait.
    process.stdin.write("".join(request(f"chatcmpl-{n}") + "\n" for n in range(1, 26)))
    process.stdin.flush()
    deadline = time.monotonic() + 30
    while queue_count(queue_url) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)

    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 1, stdout + stderr
    assert "Aborted" not in stderr and "Traceback" not in stderr
    assert stderr.splitlines()[-5:] == [f"line {n}: not sent: interrupted" for n in range(21, 26)]
    assert "read 25, sent 20, invalid 0, failed 5" in stdout
    assert "stopped early: interrupted; nothing after line 25 was read" in stdout
    assert len(drain(queue_url)) == 20


# ----- the Python API: a report, or a documented error -----


def test_an_object_that_is_not_json_is_an_invalid_line_and_the_rest_is_sent(queue_url: str) -> None:
    requests: list[dict[str, Any]] = [{"completion_id": f"chatcmpl-{n}", "metadata": {"k": "v"}} for n in range(30)]
    requests[20]["metadata"] = {"reviewed-on": datetime.date(2026, 12, 4)}

    report = send_tag_requests(requests, queue_url=queue_url)

    assert (report.read, report.sent) == (30, 29)
    assert report.problem_lines() == ["line 21: invalid: body: not JSON: Object of type date is not JSON serializable"]
    assert len(drain(queue_url)) == 29


def test_a_stack_that_cannot_be_read_is_a_usage_error(moto: MotoEndpoint) -> None:
    with pytest.raises(UsageError, match="no-such-stack"):
        send_tag_requests([request("chatcmpl-1")], stack_name="no-such-stack")


def test_default_request_ids_of_runs_started_in_the_same_second_differ(queue_url: str) -> None:
    reports = [send_tag_requests([request("chatcmpl-1")], queue_url=queue_url) for _ in range(2)]

    prefixes = [report.request_id_prefix for report in reports]
    assert all(re.fullmatch(r"send-\d{8}T\d{6}Z-[0-9a-f]{16}", prefix) for prefix in prefixes), prefixes
    assert prefixes[0] != prefixes[1]
    assert sorted(parse_tag_request(body).request_id for body in drain(queue_url)) == sorted(f"{p}-1" for p in prefixes)  # type: ignore[type-var]


def test_a_paced_send_never_puts_more_than_a_tenth_of_a_seconds_requests_in_one_call(queue_url: str) -> None:
    session = boto3.session.Session()
    entries_per_call: list[int] = []
    session.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: entries_per_call.append(len(params["Entries"])),
    )

    report = send_tag_requests(
        [request(f"chatcmpl-{n}") for n in range(30)], queue_url=queue_url, session=session, rate=40
    )

    assert report.ok and report.sent == 30
    assert entries_per_call == [4] * 7 + [2]  # 40 per second: 4 per call, every tenth of a second
    assert len(drain(queue_url)) == 30


def test_sigterm_while_select_lists_completions_ends_with_a_message(
    queue_url: str, api: LocalOpenAIServer, stored: Callable[..., None]
) -> None:
    stored(3, {"review": "pending"})
    api.inject_fault(None, method="GET", delay=20)  # the listing hangs
    script = Path(sys.executable).with_name("completion-tagger")
    process = subprocess.Popen(
        [str(script), "send", "--select", "metadata[review]=pending", "--tag", "a=b", "--queue-url", queue_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": api.base_url},
    )
    deadline = time.monotonic() + 30
    while not api.stats()["requests"].get("GET /v1/chat/completions") and time.monotonic() < deadline:
        time.sleep(0.05)

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 1, stdout + stderr
    assert stderr.strip().endswith("completion-tagger send: interrupted before anything was sent")
    assert "Traceback" not in stderr
    assert drain(queue_url) == []
