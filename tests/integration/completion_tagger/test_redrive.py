"""`make redrive` / `completion-tagger redrive`: dead-lettered requests go back to the queue and are
processed normally.

The client-side move (the local stack's flavour) runs against moto's server over HTTP, with the real
handler dead-lettering the messages first. SQS's message-move task cannot run on moto (moto 5.x answers
StartMessageMoveTask and ListMessageMoveTasks with "not implemented"), so the AWS flavour's calls are
checked with a botocore Stubber.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from botocore.config import Config
from botocore.stub import Stubber

from completion_tagger.redrive import command
from completion_tagger.redrive.client_move import move_messages
from completion_tagger.redrive.queue_pair import queues_from_urls
from completion_tagger.sqs_calls import queue_depth
from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import MotoEndpoint
from local_stack.event_source import SqsEventSourceMapping
from local_stack.observer import ResultEvent, ResultObserver
from local_stack.provision import StackNames, StackResources, StackSettings, provision
from tagger.composition import create_service
from tagger.config import Settings
from tagger.logic.parsing import parse_tag_request
from tagger.logic.service import TaggerService
from tagger.models import format_issued_at
from tests.integration.harness import API_KEY

MAX_RECEIVE_COUNT = 2


@pytest.fixture
def short_stack(moto: MotoEndpoint) -> StackResources:
    """Queues with a 1 s visibility timeout and few receives, so dead-lettering happens within seconds."""
    names = StackNames.with_prefix(f"rd{uuid.uuid4().hex[:8]}-")
    return provision(names, StackSettings(max_receive_count=MAX_RECEIVE_COUNT, visibility_timeout_seconds=1))


@pytest.fixture
def sqs(moto: MotoEndpoint) -> Any:
    return boto3.client("sqs")


def make_service(stack: StackResources, api: LocalOpenAIServer) -> TaggerService:
    settings = Settings(
        openai_base_url=api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.table_name,
        event_bus_name=stack.event_bus_name,
        max_receive_count=MAX_RECEIVE_COUNT,
        retry_backoff_base_seconds=0,
        openai_timeout_seconds=2.0,
        time_reserve_millis=500,
    )
    return create_service(settings)


class Function:
    """The real service behind the event source mapping, remembering every record it was given."""

    def __init__(self, service: TaggerService) -> None:
        self.service = service
        self.records: list[dict[str, Any]] = []
        self.metrics = Metrics(namespace="CompletionTaggerTest")

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.records.extend(event["Records"])
        try:
            return self.service.handle(event, context, self.metrics)
        finally:
            self.metrics.clear_metrics()


def depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight), what the redrive reads before it starts."""
    found = queue_depth(sqs, queue_url)
    return found.visible, found.in_flight


def redriven_body(records: list[dict[str, Any]], completion_id: str) -> str:
    [body] = [r["body"] for r in records if parse_tag_request(r["body"]).completion_id == completion_id]
    return str(body)


def issued_at_micros(body: str) -> int:
    micros = parse_tag_request(body).issued_at_micros()
    assert micros is not None
    return micros


def drain(mapping: SqsEventSourceMapping, until: Callable[[], bool], timeout_seconds: float = 30) -> None:
    assert mapping.run(until=until, timeout_seconds=timeout_seconds), "the queue did not drain in time"


def events_by_type(events: list[ResultEvent]) -> dict[str, list[ResultEvent]]:
    grouped: dict[str, list[ResultEvent]] = {}
    for event in events:
        grouped.setdefault(event.detail_type, []).append(event)
    return grouped


@pytest.mark.integration
def test_dead_lettered_requests_are_redriven_and_processed_normally(
    short_stack: StackResources, api: LocalOpenAIServer, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = short_stack
    completions = [f"chatcmpl-redrive-{index}-{uuid.uuid4().hex[:8]}" for index in range(5)]
    for completion_id in completions:
        api.seed_completion(completion_id, {"source": "seed"})
    bodies = [
        json.dumps({"completion_id": c, "metadata": {"reviewed": "true", "n": str(i)}, "request_id": f"r{i}"})
        for i, c in enumerate(completions[:4])
    ]
    own_issued_at = "2026-12-04T10:00:00.000001Z"
    bodies[0] = json.dumps({**json.loads(bodies[0]), "issued_at": own_issued_at})
    # What the upstream rule delivers (an EventBridge event), as the dead-letter queue may also hold.
    bodies.append(
        json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "CompletionTagRequested",
                "source": "upstream.reviews",
                "detail": {"completion_id": completions[4], "metadata": {"reviewed": "true", "n": "4"}},
            }
        )
    )
    attributes = {
        "origin": {"DataType": "String", "StringValue": "redrive-test"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    for body in bodies:
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, MessageAttributes=attributes)

    # The API is down: every request answers 503 (Retry-After 0 keeps the in-invocation retries quick).
    api.inject_fault(503, count=100_000, retry_after=0)
    function = Function(make_service(stack, api))
    mapping = SqsEventSourceMapping(stack.queue_url, function, queue_arn=stack.queue_arn, batch_size=10)
    observer = ResultObserver(stack.observer_queue_url, sqs)
    drain(mapping, lambda: depth(sqs, stack.queue_url) == (0, 0) and depth(sqs, stack.dead_letter_queue_url)[0] == 5)

    failed = observer.drain()
    assert len(failed) == 5
    assert {(e.detail_type, e.error_code, e.retryable, e.error.get("status")) for e in failed} == {
        ("CompletionTagFailed", "upstream_error", True, 503)
    }
    dead_ids = {record["messageId"] for record in function.records}
    assert {e.message_id for e in failed} == dead_ids
    assert api.stats()["updates_by_completion"] == {}

    # Fixed: the API is back. Redrive, as `completion-tagger redrive --local` does.
    api.clear_faults()
    exit_code = command.command_line(
        ["--local", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]
    )
    output = capsys.readouterr().out
    assert exit_code == 0, output
    assert "5 message(s) moved back to the queue (received 5, sent 5, deleted 5)" in output
    assert depth(sqs, stack.dead_letter_queue_url) == (0, 0)
    assert depth(sqs, stack.queue_url) == (5, 0)

    first_run_records = len(function.records)
    drain(mapping, lambda: depth(sqs, stack.queue_url) == (0, 0))

    redriven = function.records[first_run_records:]
    # Each keeps its order: the original SentTimestamp becomes issued_at where the body had none.
    sent_at = {
        parse_tag_request(record["body"]).completion_id: format_issued_at(
            int(record["attributes"]["SentTimestamp"]) * 1000
        )
        for record in function.records[:first_run_records]
    }
    expected_bodies = []
    for body in bodies:
        document = json.loads(body)
        request = document.get("detail", document)
        request.setdefault("issued_at", sent_at[request["completion_id"]])
        expected_bodies.append(document)
    assert sorted((json.loads(record["body"]) for record in redriven), key=json.dumps) == sorted(
        expected_bodies, key=json.dumps
    )
    assert parse_tag_request(redriven_body(redriven, completions[0])).issued_at == own_issued_at
    assert "issued_at" in json.loads(redriven_body(redriven, completions[4]))["detail"]
    for record in redriven:
        assert int(record["attributes"]["SentTimestamp"]) * 1000 >= issued_at_micros(record["body"])
    for record in redriven:
        assert record["attributes"]["ApproximateReceiveCount"] == "1"  # a fresh start on the queue
        assert record["messageAttributes"]["origin"]["stringValue"] == "redrive-test"
        assert record["messageAttributes"]["blob"]["binaryValue"] == "AP8="
    results = events_by_type(observer.drain())
    assert set(results) == {"CompletionTagged"}
    tagged = results["CompletionTagged"]
    assert sorted(e.message_id or "" for e in tagged) == sorted(record["messageId"] for record in redriven)
    for index, completion_id in enumerate(completions):
        expected = {"source": "seed", "reviewed": "true", "n": str(index)}
        assert api.metadata_of(completion_id) == expected
        assert [e.detail["metadata"] for e in tagged if e.completion_id == completion_id] == [expected]
    assert api.stats()["updates_by_completion"] == dict.fromkeys(completions, 1)
    assert depth(sqs, stack.dead_letter_queue_url) == (0, 0)


class Killed(BaseException):
    """The process died (not an error the code could handle)."""


class CrashOnDelete:
    """An SQS client that dies (like a killed process) when it is about to delete from the dead-letter queue."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def delete_message_batch(self, **kwargs: Any) -> Any:
        raise Killed("killed between send and delete")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.integration
def test_a_move_killed_between_send_and_delete_duplicates_and_idempotency_absorbs_it(
    short_stack: StackResources, api: LocalOpenAIServer, sqs: Any
) -> None:
    stack = short_stack
    completions = [f"chatcmpl-crash-{index}-{uuid.uuid4().hex[:8]}" for index in range(3)]
    for completion_id in completions:
        api.seed_completion(completion_id, {})
        body = json.dumps({"completion_id": completion_id, "metadata": {"reviewed": "true"}})
        sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=body)
    queues = queues_from_urls(sqs, stack.dead_letter_queue_url, stack.queue_url)

    with pytest.raises(Killed):
        move_messages(CrashOnDelete(sqs), queues, visibility_timeout_seconds=1, out=lambda line: None)  # type: ignore[arg-type]

    # Sent but not deleted: on the queue, and still in the dead-letter queue (visible again once the lease ends).
    assert depth(sqs, stack.queue_url) == (3, 0)
    assert sum(depth(sqs, stack.dead_letter_queue_url)) == 3
    lines: list[str] = []
    result = move_messages(sqs, queues, wait_seconds=2, out=lines.append)
    assert (result.received, result.sent, result.deleted, result.clean) == (3, 3, 3, True)
    assert depth(sqs, stack.queue_url) == (6, 0)  # every request twice: nothing lost, three duplicates

    function = Function(make_service(stack, api))
    mapping = SqsEventSourceMapping(stack.queue_url, function, queue_arn=stack.queue_arn)
    drain(mapping, lambda: depth(sqs, stack.queue_url) == (0, 0))

    events = ResultObserver(stack.observer_queue_url, sqs).drain()
    assert len(function.records) == 6
    assert sorted(e.completion_id or "" for e in events) == sorted(completions)  # one event per request
    assert {e.detail_type for e in events} == {"CompletionTagged"}
    assert api.stats()["updates_by_completion"] == dict.fromkeys(completions, 1)  # the duplicates wrote nothing
    assert depth(sqs, stack.dead_letter_queue_url) == (0, 0)


@pytest.mark.integration
def test_moto_has_no_message_move_task(short_stack: StackResources) -> None:
    """Why the local flavour exists. If moto gains the call, the local stack could use it too."""
    client = boto3.client("sqs", config=Config(retries={"max_attempts": 1}))
    try:
        client.start_message_move_task(
            SourceArn=short_stack.dead_letter_queue_arn, DestinationArn=short_stack.queue_arn
        )
    except client.exceptions.ClientError as error:  # moto raises NotImplementedError: an HTTP 500
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    else:
        pytest.fail(
            "moto now implements StartMessageMoveTask: the local stack could use it (completion_tagger/redrive/)"
        )


# ----- the AWS flavour: SQS's message-move task, checked with a Stubber -----

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/completion-tagger-dev-TagRequestDeadLetterQueue-AbC"
DLQ_ARN = "arn:aws:sqs:eu-west-1:111122223333:completion-tagger-dev-TagRequestDeadLetterQueue-AbC"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/completion-tagger-dev-TagRequestQueue-XyZ"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:111122223333:completion-tagger-dev-TagRequestQueue-XyZ"
DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
NOW_MS = 1_780_000_000_000  # SQS's clock when the task starts, in epoch milliseconds
YESTERDAY_MS = NOW_MS - 86_400_000


class StubbedSession:
    """Hands out stubbed clients, as `command.main` asks a boto3 session for them."""

    def __init__(self) -> None:
        options: dict[str, Any] = {"region_name": "eu-west-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        self.sqs = boto3.client("sqs", endpoint_url="https://sqs.eu-west-1.amazonaws.com", **options)
        self.cloudformation = boto3.client(
            "cloudformation", endpoint_url="https://cloudformation.eu-west-1.amazonaws.com", **options
        )
        self.sqs_stub = Stubber(self.sqs)
        self.cloudformation_stub = Stubber(self.cloudformation)

    def client(self, name: str) -> Any:
        return {"sqs": self.sqs, "cloudformation": self.cloudformation}[name]

    def __enter__(self) -> StubbedSession:
        self.sqs_stub.activate()
        self.cloudformation_stub.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sqs_stub.deactivate()
        self.cloudformation_stub.deactivate()

    def expect_stack(self, stack_name: str = "completion-tagger-dev") -> None:
        outputs = {
            "TagRequestQueueUrl": QUEUE_URL,
            "TagRequestQueueArn": QUEUE_ARN,
            "TagRequestDeadLetterQueueUrl": DLQ_URL,
            "TagRequestDeadLetterQueueArn": DLQ_ARN,
            "EventBusName": "completion-tagger-dev-results",
        }
        self.cloudformation_stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": stack_name,
                        "CreationTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
                    }
                ]
            },
            {"StackName": stack_name},
        )

    def expect_move_started(self, depth: int = 2) -> None:
        """The usual start: the stack's outputs, the DLQ's depth, the most recent earlier task (yesterday's),
        and a move task to the queue."""
        self.expect_stack()
        self.expect_depth(depth)
        self.expect_previous_task(YESTERDAY_MS)
        self.sqs_stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-handle-1"},
            {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN},
        )

    def expect_previous_task(self, started_ms: int | None) -> None:
        """What ListMessageMoveTasks shows before the redrive starts its task."""
        results = [] if started_ms is None else [finished_task(7, StartedTimestamp=started_ms)]
        self.sqs_stub.add_response(
            "list_message_move_tasks", {"Results": results}, {"SourceArn": DLQ_ARN, "MaxResults": 1}
        )

    def expect_depth(self, visible: int, in_flight: int = 0) -> None:
        self.sqs_stub.add_response(
            "get_queue_attributes",
            {
                "Attributes": {
                    "ApproximateNumberOfMessages": str(visible),
                    "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                }
            },
            {"QueueUrl": DLQ_URL, "AttributeNames": DEPTH_ATTRIBUTES},
        )

    def expect_task_listing(self, status: str, moved: int, to_move: int, **extra: Any) -> None:
        task: dict[str, Any] = {
            "Status": status,
            "SourceArn": DLQ_ARN,
            "DestinationArn": QUEUE_ARN,
            "ApproximateNumberOfMessagesMoved": moved,
            "ApproximateNumberOfMessagesToMove": to_move,
            "StartedTimestamp": NOW_MS + 300,
            **extra,
        }
        if status == "RUNNING":
            task["TaskHandle"] = "task-handle-1"
        self.sqs_stub.add_response(
            "list_message_move_tasks", {"Results": [task]}, {"SourceArn": DLQ_ARN, "MaxResults": 1}
        )

    def assert_done(self) -> None:
        self.sqs_stub.assert_no_pending_responses()
        self.cloudformation_stub.assert_no_pending_responses()


def finished_task(moved: int, **extra: Any) -> dict[str, Any]:
    return {
        "Status": "COMPLETED",
        "SourceArn": DLQ_ARN,
        "DestinationArn": QUEUE_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        "ApproximateNumberOfMessagesToMove": moved,
        **extra,
    }


def run_redrive(session: StubbedSession, *argv: str) -> tuple[int, list[str], list[float]]:
    lines: list[str] = []
    sleeps: list[float] = []
    code = command.main(command.parse_arguments(argv), session=session, out=lines.append, sleep=sleeps.append)  # type: ignore[arg-type]
    return code, lines, sleeps


def test_aws_redrive_starts_a_move_task_to_the_named_queue_and_polls_it_to_completion() -> None:
    with StubbedSession() as session:
        session.expect_stack("completion-tagger-dev")
        session.expect_depth(3)
        session.expect_previous_task(None)  # the queue never had a move task
        session.sqs_stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-handle-1"},
            {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN},  # the destination named, never "back to source"
        )
        session.expect_task_listing("RUNNING", 0, 3)
        session.expect_task_listing("RUNNING", 2, 3)
        session.expect_task_listing("COMPLETED", 3, 3)  # a finished task no longer carries its handle

        code, lines, sleeps = run_redrive(session, "--stack-name", "completion-tagger-dev", "--poll-interval", "2")

        session.assert_done()
    assert code == command.EXIT_OK
    assert sleeps == [2.0, 2.0]
    assert "  RUNNING: 0 of 3 messages moved" in lines
    assert "  RUNNING: 2 of 3 messages moved" in lines
    assert "  COMPLETED: 3 of 3 messages moved" in lines
    assert lines[-1] == "redrive: done, 3 message(s) moved back to the queue"


def test_aws_redrive_does_not_take_an_earlier_finished_task_for_its_own() -> None:
    with StubbedSession() as session:
        session.expect_move_started()
        # Not listed yet: the most recent task is yesterday's, finished (no handle) ...
        session.expect_task_listing("COMPLETED", 7, 7, StartedTimestamp=YESTERDAY_MS)
        session.sqs_stub.add_response(
            "list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1}
        )
        # ... then ours.
        session.expect_task_listing("COMPLETED", 2, 2)

        code, lines, sleeps = run_redrive(session, "--poll-interval", "1")

        session.assert_done()
    assert code == command.EXIT_OK and len(sleeps) == 2
    assert lines[-1] == "redrive: done, 2 message(s) moved back to the queue"
    assert "  RUNNING: not listed yet" in lines


def test_aws_redrive_recognises_its_finished_task_by_sqs_clock_whatever_the_local_clock_says() -> None:
    with StubbedSession() as session:
        session.expect_move_started()
        # Finished before the first poll, started one second after yesterday's task by SQS's clock: the local
        # clock (minutes ahead or behind) plays no part.
        session.sqs_stub.add_response(
            "list_message_move_tasks",
            {"Results": [finished_task(2, StartedTimestamp=YESTERDAY_MS + 1000)]},
            {"SourceArn": DLQ_ARN, "MaxResults": 1},
        )

        code, lines, sleeps = run_redrive(session, "--poll-interval", "1")

        session.assert_done()
    assert code == command.EXIT_OK and sleeps == []
    assert lines[-1] == "redrive: done, 2 message(s) moved back to the queue"


def test_aws_redrive_with_queue_urls_and_a_rate_limit() -> None:
    with StubbedSession() as session:
        for url, arn in ((DLQ_URL, DLQ_ARN), (QUEUE_URL, QUEUE_ARN)):
            session.sqs_stub.add_response(
                "get_queue_attributes",
                {"Attributes": {"QueueArn": arn}},
                {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
            )
        session.expect_depth(0, 4)
        session.expect_previous_task(None)
        session.sqs_stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-handle-1"},
            {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 50},
        )
        session.expect_task_listing("COMPLETED", 4, 4)

        code, _, sleeps = run_redrive(session, "--dlq-url", DLQ_URL, "--queue-url", QUEUE_URL, "--max-per-second", "50")

        session.assert_done()
    assert code == command.EXIT_OK and sleeps == []


def test_aws_redrive_reports_a_failed_task() -> None:
    with StubbedSession() as session:
        session.expect_move_started()
        session.expect_task_listing("FAILED", 1, 2, FailureReason="AccessDenied")

        code, lines, _ = run_redrive(session)

        session.assert_done()
    assert code == command.EXIT_NOT_DONE
    assert lines[-1] == "redrive: move task FAILED: AccessDenied (1 message(s) moved)"


def test_aws_redrive_stops_watching_after_its_timeout() -> None:
    with StubbedSession() as session:
        session.expect_move_started()
        session.expect_task_listing("RUNNING", 0, 2)

        code, lines, _ = run_redrive(session, "--timeout", "0")

        session.assert_done()
    assert code == command.EXIT_NOT_DONE
    assert any("still RUNNING" in line for line in lines)


def test_aws_redrive_explains_when_a_task_is_already_running() -> None:
    with StubbedSession() as session:
        session.expect_stack()
        session.expect_depth(2)
        session.expect_previous_task(YESTERDAY_MS)
        session.sqs_stub.add_client_error(
            "start_message_move_task",
            service_error_code="AWS.SimpleQueueService.UnsupportedOperation",
            service_message="There is already a task running.",
            http_status_code=400,
        )

        code, lines, _ = run_redrive(session)

        session.assert_done()
    assert code == command.EXIT_SETUP
    assert "only one may be active" in lines[-1]


def test_aws_redrive_with_an_empty_dead_letter_queue_starts_nothing() -> None:
    with StubbedSession() as session:
        session.expect_stack()
        session.expect_depth(0)

        code, lines, _ = run_redrive(session)

        session.assert_done()
    assert code == command.EXIT_OK and lines[-1] == "nothing to redrive"


def test_aws_redrive_names_missing_stack_outputs() -> None:
    with StubbedSession() as session:
        session.cloudformation_stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "other",
                        "CreationTime": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": "TagRequestQueueUrl", "OutputValue": QUEUE_URL}],
                    }
                ]
            },
            {"StackName": "other"},
        )

        code, lines, _ = run_redrive(session, "--stack-name", "other")

        session.assert_done()
    assert code == command.EXIT_SETUP
    assert "TagRequestDeadLetterQueueUrl" in lines[-1] and "TagRequestQueueArn" in lines[-1]


def test_queue_urls_come_together() -> None:
    lines: list[str] = []
    code = command.main(command.parse_arguments(["--dlq-url", DLQ_URL]), out=lines.append)
    assert code == command.EXIT_SETUP and "go together" in lines[0]


# ----- the client-side move against moto: large messages, refusals, what is left -----


def large_body(number: int) -> str:
    """About 150 KB: ten of these (1.5 MB) are more than one SendMessageBatch may carry."""
    return json.dumps({"completion_id": f"chatcmpl-big-{number}", "metadata": {"k": "v"}, "note": "x" * 150_000})


def redrive_locally(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = command.command_line(["--local", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url])
    return code, capsys.readouterr().out


@pytest.mark.integration
def test_large_messages_are_moved_in_batches_that_fit(
    short_stack: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(12):
        sqs.send_message(QueueUrl=short_stack.dead_letter_queue_url, MessageBody=large_body(number))

    code, output = redrive_locally(short_stack, capsys)

    assert code == command.EXIT_OK, output
    assert "12 message(s) moved back to the queue (received 12, sent 12, deleted 12)" in output
    assert output.splitlines()[-1] == "redrive: done, the dead-letter queue is empty"
    assert depth(sqs, short_stack.queue_url) == (12, 0)


@pytest.mark.integration
def test_a_refused_send_is_shown_and_the_messages_are_visible_again_at_once(
    short_stack: StackResources, sqs: Any
) -> None:
    for number in range(3):
        sqs.send_message(QueueUrl=short_stack.dead_letter_queue_url, MessageBody=f'{{"n": {number}}}')
    dead_letters = queues_from_urls(sqs, short_stack.dead_letter_queue_url, short_stack.queue_url)
    gone = f"{short_stack.queue_url}-deleted"
    queues = type(dead_letters)(dead_letters.dead_letter_queue_url, dead_letters.dead_letter_queue_arn, gone, "arn:x")
    lines: list[str] = []

    result = move_messages(sqs, queues, out=lines.append)

    assert (result.received, result.sent, result.send_failures, result.clean) == (3, 0, 3, False)
    assert any(line.startswith("  SendMessageBatch refused: ") and "NonExistentQueue" in line for line in lines)
    assert depth(sqs, short_stack.dead_letter_queue_url) == (3, 0)  # not hidden for the move's 60 s


@pytest.mark.integration
def test_messages_in_flight_elsewhere_mean_the_redrive_is_not_done(
    short_stack: StackResources, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(12):
        sqs.send_message(QueueUrl=short_stack.dead_letter_queue_url, MessageBody=f'{{"n": {number}}}')
    # An earlier run (or anyone) received ten and has not finished with them: invisible for a minute.
    taken = sqs.receive_message(
        QueueUrl=short_stack.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
    )["Messages"]
    assert len(taken) == 10

    code, output = redrive_locally(short_stack, capsys)

    assert code == command.EXIT_NOT_DONE, output
    assert "2 message(s) moved back to the queue" in output
    assert "redrive: 10 message(s) still in the dead-letter queue (10 in flight" in output
    assert "done" not in output
