"""Faults lose nothing: each is produced for real and handled as the README's "What happens to each message" says."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local_stack.lambda_context import LocalLambdaContext
from tagger.logic.records import Delivery
from tagger.logic.tagging import Applied, Ordering, Tagger
from tests.integration.harness import API_KEY, Harness, Seeder, failures

pytestmark = pytest.mark.integration


def replace(completion: str, **metadata: str) -> dict[str, Any]:
    return {"completion_id": completion, "metadata": metadata or {"a": "1"}, "mode": "replace"}


def visible_now(harness: Harness) -> int:
    attributes = harness.sqs.get_queue_attributes(
        QueueUrl=harness.stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_retry_after_longer_than_the_invocation_puts_back_instead_of_sleeping(harness: Harness, seed: Seeder) -> None:
    first, second, third = seed(), seed(), seed()
    harness.api.inject_fault(429, count=1, retry_after=120)
    started = time.monotonic()
    response, records = harness.run(
        harness.service(max_concurrency=1), [replace(first), replace(second), replace(third)], timeout_seconds=10
    )
    assert time.monotonic() - started < 5  # it did not wait for the 120 s
    assert failures(response) == {record["messageId"] for record in records}
    # After the 429, the rest of the batch is not sent into the same wall.
    assert harness.api.stats()["total"] == 1
    assert harness.events(0, wait_seconds=0.5) == []


def test_put_back_records_wait_out_the_retry_after(harness: Harness, seed: Seeder) -> None:
    harness.api.inject_fault(429, count=1, retry_after=60)
    response, [record] = harness.run(harness.service(), [replace(seed())], timeout_seconds=5)
    assert failures(response) == {record["messageId"]}
    time.sleep(1.2)
    # The record's visibility was extended to the API's Retry-After, so it is not visible again yet.
    assert harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, WaitTimeSeconds=0).get("Messages") is None


def test_put_back_records_back_off_by_receive_count(harness: Harness, seed: Seeder) -> None:
    # A read's 503 (a write's 5xx is an unknown outcome, with a settle window of its own).
    harness.api.inject_fault(503, count=100, method="GET")
    service = harness.service(retry_backoff_base_seconds=0)
    response, [record] = harness.run(service, [{"completion_id": seed(), "metadata": {"a": "1"}}])
    assert failures(response) == {record["messageId"]}
    # base 0: visible again at once (the queue's own visibility timeout is 30 s here).
    assert harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, WaitTimeSeconds=0).get("Messages")


def test_an_exhausted_quota_is_not_retried_and_waits_the_longest_backoff(harness: Harness, seed: Seeder) -> None:
    harness.api.inject_fault(429, count=100, reason="quota", retry_after=1)
    # Base 0: any other put-back would be visible again at once (see the test above).
    service = harness.service(retry_backoff_base_seconds=0, retry_backoff_max_seconds=60)
    response, records = harness.run(service, [replace(seed()), replace(seed())])
    assert failures(response) == {record["messageId"] for record in records}
    assert harness.api.stats()["total"] == 2  # one request per record: no retry inside the invocation
    assert harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, WaitTimeSeconds=0).get("Messages") is None
    assert harness.events(0, wait_seconds=0.5) == []  # not dead-lettered early: no final failure yet


def test_an_exhausted_quota_ends_as_quota_exceeded_on_the_last_delivery(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    harness.api.inject_fault(429, count=100, reason="quota")
    response, [record] = harness.run(harness.service(), [replace(completion)], receive_count=5)
    assert failures(response) == {record["messageId"]}
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagFailed"
    assert event["detail"]["error"]["code"] == "quota_exceeded"
    assert (event["detail"]["error"]["retryable"], event["detail"]["error"]["status"]) == (True, 429)


@pytest.mark.parametrize("count", [1, 2])
def test_connection_reset_on_a_read_is_retried(harness: Harness, seed: Seeder, count: int) -> None:
    completion = seed()
    harness.api.inject_fault(None, count=count, action="reset", method="GET")
    response, _ = harness.run(harness.service(), [{"completion_id": completion, "metadata": {"a": "1"}}])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"a": "1"}


@pytest.mark.parametrize("fault", [{"action": "reset"}, {"delay": 1.0}])
def test_a_write_with_unknown_outcome_is_put_back_to_settle_never_resent_blindly(
    harness: Harness, seed: Seeder, fault: dict[str, Any]
) -> None:
    completion = seed()
    harness.api.inject_fault(None, count=1, method="POST", **fault)
    service = harness.service(openai_timeout_seconds=0.3)
    response, [record] = harness.run(service, [replace(completion)])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["requests"].get("POST /v1/chat/completions/{id}") == 1
    # Its visibility lets the first attempt settle (2 x the read timeout) before the redelivery.
    assert harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, WaitTimeSeconds=0).get("Messages") is None
    time.sleep(1.2)  # a delayed write has landed by now

    response, _ = harness.run(service, [replace(completion)], receive_count=2)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"a": "1"}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]
    if "delay" in fault:  # the first write landed late: the redelivery read it and did not write again
        assert harness.api.stats()["updates_by_completion"][completion] == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_write_answered_with_a_proxy_5xx_is_put_back_to_settle_never_resent(
    harness: Harness, seed: Seeder, status: int
) -> None:
    completion = seed({"old": "x"})
    harness.api.inject_fault(status, count=1, method="POST")
    service = harness.service(openai_timeout_seconds=0.5, retry_backoff_base_seconds=0)
    response, [record] = harness.run(service, [replace(completion)])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["requests"].get("POST /v1/chat/completions/{id}") == 1
    # Invisible for the settle window (2 x the read timeout), not the backoff's 0 s.
    assert harness.sqs.receive_message(QueueUrl=harness.stack.queue_url, WaitTimeSeconds=0).get("Messages") is None

    response, _ = harness.run(service, [replace(completion)], receive_count=2)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"a": "1"}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]


def test_a_redelivered_replace_that_is_already_applied_is_not_written_again(harness: Harness, seed: Seeder) -> None:
    completion = seed({"a": "1"})
    response, _ = harness.run(harness.service(), [replace(completion)], receive_count=3)
    assert response == {"batchItemFailures": []}
    assert harness.api.stats()["requests"] == {"GET /v1/chat/completions/{id}": 1}
    assert [e["detail-type"] for e in harness.events(1)] == ["CompletionTagged"]


def test_persistent_reset_is_a_connection_error_on_the_last_delivery(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    harness.api.inject_fault(None, count=100, action="reset")
    response, [record] = harness.run(harness.service(), [replace(completion)], receive_count=5)
    assert failures(response) == {record["messageId"]}
    [event] = harness.events(1)
    assert event["detail"]["error"]["code"] == "connection_error"
    assert event["detail"]["error"]["retryable"] is True


def test_dynamodb_unreachable_puts_back_and_never_writes_without_a_record(
    harness: Harness, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    completion = seed()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    service = harness.service()
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    response, [record] = harness.run(service, [replace(completion)])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["total"] == 0
    assert harness.events(0, wait_seconds=0.5) == []


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_dynamodb_throttling_puts_back_and_never_writes_without_a_record(
    harness: Harness, seed: Seeder, leases: bool
) -> None:
    session = boto3.session.Session()
    throttled: list[str] = []

    def throttle(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
        throttled.append(kwargs["model"].name)
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"}
        return AWSResponse("http://dynamodb", 400, HTTPHeaders(), None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    # Without leases Powertools marks the request in progress (PutItem); with them taking the lease records
    # the request in flight (UpdateItem).
    session.events.register("before-call.dynamodb.UpdateItem" if leases else "before-call.dynamodb.PutItem", throttle)  # type: ignore[arg-type]
    response, [record] = harness.run(harness.service(session=session, completion_leases=leases), [replace(seed())])
    assert failures(response) == {record["messageId"]}
    assert throttled  # the idempotency record could not be written or read...
    assert harness.api.stats()["total"] == 0  # ...so the API was never called
    assert harness.events(0, wait_seconds=0.5) == []


def test_unexpected_error_in_one_record_fails_only_that_record(
    harness: Harness, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, cursed = seed(), seed()
    real_apply = Tagger.apply

    def apply(self: Tagger, delivery: Delivery, ordering: Ordering | None = None) -> Applied:
        if delivery.request.completion_id == cursed:
            raise RuntimeError("a bug")
        return real_apply(self, delivery, ordering)

    monkeypatch.setattr(Tagger, "apply", apply)
    response, records = harness.run(harness.service(), [replace(good), replace(cursed)], receive_count=5)
    assert failures(response) == {records[1]["messageId"]}
    assert harness.api.metadata_of(good) == {"a": "1"}
    by_type = {event["detail-type"]: event["detail"] for event in harness.events(2)}
    assert by_type["CompletionTagged"]["completion_id"] == good
    assert by_type["CompletionTagFailed"]["completion_id"] == cursed
    assert by_type["CompletionTagFailed"]["error"]["retryable"] is True


def test_rotated_key_in_secrets_manager_is_reread_after_a_401(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(Name=f"{harness.stack.table_name}-key", SecretString=API_KEY)["ARN"]
    service = harness.service(openai_api_key=None, openai_api_key_secret=secret_arn)
    harness.run(service, [replace(completion, v="1")])
    assert harness.api.metadata_of(completion) == {"v": "1"}

    rotated = "sk-rotated-0987654321"
    secrets.put_secret_value(SecretId=secret_arn, SecretString=json.dumps({"api_key": rotated}))
    harness.api.configure(api_key=rotated)
    try:
        response, _ = harness.run(service, [replace(completion, v="2")])
    finally:
        harness.api.configure(api_key=API_KEY)
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"v": "2"}
    assert harness.api.stats()["statuses"].get("401", 0) == 1


def test_a_secret_in_another_region_is_read_in_the_region_its_arn_names(harness: Harness, seed: Seeder) -> None:
    completion = seed()
    elsewhere = boto3.client("secretsmanager", region_name="eu-west-1")
    secret_arn = elsewhere.create_secret(Name=f"{harness.stack.table_name}-abroad", SecretString=API_KEY)["ARN"]
    assert ":eu-west-1:" in secret_arn and boto3.session.Session().region_name != "eu-west-1"
    service = harness.service(openai_api_key=None, openai_api_key_secret=secret_arn)
    response, _ = harness.run(service, [replace(completion, v="1")])
    assert response == {"batchItemFailures": []}
    assert harness.api.metadata_of(completion) == {"v": "1"}


def test_an_unreadable_key_secret_puts_the_record_back_with_a_warning_and_no_traceback(
    harness: Harness, seed: Seeder, function_logs: io.StringIO
) -> None:
    """A secret that does not exist: moto's Secrets Manager answers ResourceNotFoundException, as AWS does."""
    completion = seed({"a": "1"})
    missing = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{harness.stack.table_name}-missing-AbCdEf"
    service = harness.service(openai_api_key=None, openai_api_key_secret=missing)
    harness.metrics.clear_metrics()  # metrics are shared by every Metrics instance of the process
    response, [record] = harness.run(service, [replace(completion, v="1")])
    assert failures(response) == {record["messageId"]}
    assert harness.api.stats()["total"] == 0
    assert harness.api.metadata_of(completion) == {"a": "1"}
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines()]
    [put_back] = [line for line in lines if line["message"] == "record put back on the queue"]
    assert put_back["level"] == "WARNING"
    assert put_back["code"] == "upstream_error"
    assert put_back["cause"] == "secret_unreadable"
    assert put_back["reason"].startswith("the API key is unavailable: could not read the API key secret")
    assert "ResourceNotFoundException" in put_back["reason"]
    assert not [line for line in lines if "exception" in line or line["level"] == "ERROR"]
    assert "Error_secret_unreadable" in harness.metrics.metric_set
    assert "Error_upstream_error" not in harness.metrics.metric_set


def deny_secret_reads(session: boto3.session.Session, code: str, message: str) -> list[str]:
    """Answer every GetSecretValue as AWS does when IAM, a resource policy or the secret's KMS key refuses.

    moto enforces none of these (it would hand the value out), so the refusal is answered in the client.
    """
    asked: list[str] = []

    def refuse(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
        asked.append(json.loads(kwargs["params"]["body"])["SecretId"])
        return AWSResponse("https://secretsmanager", 400, HTTPHeaders(), None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    session.events.register("before-call.secrets-manager.GetSecretValue", refuse)  # type: ignore[arg-type]
    return asked


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            # A partial ARN (no 6-character suffix) in the role's policy: IAM refuses the full ARN it reads.
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/tagger/fn is not authorized to perform: "
            "secretsmanager:GetSecretValue on resource: key because no identity-based policy allows it",
        ),
        # The secret's own KMS key does not let the role decrypt.
        ("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."),
    ],
)
def test_a_secret_the_role_may_not_read_is_its_own_failure_not_an_api_outage(
    harness: Harness, seed: Seeder, function_logs: io.StringIO, code: str, message: str
) -> None:
    completion = seed({"a": "1"})
    secret_arn = boto3.client("secretsmanager").create_secret(
        Name=f"{harness.stack.table_name}-denied", SecretString=API_KEY
    )["ARN"]
    session = boto3.session.Session()
    asked = deny_secret_reads(session, code, message)
    service = harness.service(session=session, openai_api_key=None, openai_api_key_secret=secret_arn)
    harness.metrics.clear_metrics()
    response, [record] = harness.run(service, [replace(completion, v="1")], receive_count=5)

    assert asked == [secret_arn]
    assert failures(response) == {record["messageId"]}  # put back: the last delivery goes to the DLQ
    assert harness.api.stats()["total"] == 0
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines()]
    [put_back] = [line for line in lines if line["message"] == "record put back on the queue"]
    assert put_back["cause"] == "secret_unreadable"
    assert code in put_back["reason"]
    assert "Error_secret_unreadable" in harness.metrics.metric_set
    assert "Error_upstream_error" not in harness.metrics.metric_set
    # The event keeps to the interface's codes; its message names the cause.
    [event] = harness.events(1)
    assert event["detail-type"] == "CompletionTagFailed"
    error = event["detail"]["error"]
    assert (error["code"], error["retryable"]) == ("upstream_error", True)
    assert "the API key is unavailable" in error["message"] and code in error["message"]
    assert API_KEY not in json.dumps(event) + function_logs.getvalue()


def test_the_key_never_reaches_logs_events_or_metrics_on_any_failure_path(
    harness: Harness, seed: Seeder, capsys: pytest.CaptureFixture[str], function_logs: io.StringIO
) -> None:
    key = "sk-never-print-me-5f1c2a"
    harness.api.configure(api_key=key)
    try:
        service = harness.service(openai_api_key=key, max_concurrency=1)
        bodies: list[str | dict[str, Any]] = []
        for status in (400, 401, 403, 404, 409, 422, 429, 500):
            completion = seed()
            harness.api.inject_fault(status, count=5, completion_id=completion, retry_after_ms=1)
            bodies.append(replace(completion))
        reset = seed()
        harness.api.inject_fault(None, count=5, completion_id=reset, action="reset")
        bodies += [replace(reset), "not json", {"completion_id": "x", "metdata": {}}]
        harness.run(service, bodies, receive_count=5)
        slow = seed()
        harness.api.inject_fault(None, count=5, completion_id=slow, delay=1.0)
        harness.run(harness.service(openai_api_key=key, openai_timeout_seconds=0.2), [replace(slow)], receive_count=5)
        wrong = harness.service(openai_api_key=key + "-old")  # a 401 whose message names a key
        harness.run(wrong, [replace(seed())], receive_count=5)
        harness.metrics.flush_metrics()
    finally:
        harness.api.configure(api_key=API_KEY)
    events = harness.events(14)
    output = capsys.readouterr()
    logs = function_logs.getvalue()
    assert len(events) >= 13
    assert "OpenAI API answered 401" in logs  # the failures were logged...
    assert "Error_unauthorized" in output.out
    for text in (logs, output.out, output.err, json.dumps(events)):
        assert key not in text  # ...without the key
        assert "never-print-me" not in text


def test_a_batch_that_outlives_its_time_puts_back_unstarted_records(harness: Harness, seed: Seeder) -> None:
    completions = [seed() for _ in range(4)]
    # Four calls of 0.8 s each, one at a time, cannot fit in 2 s of work; the first fits even on a loaded machine.
    harness.api.configure(latency=0.8)
    try:
        records = harness.deliver([replace(c) for c in completions])
        service = harness.service(max_concurrency=1, time_reserve_millis=500)
        response = service.handle({"Records": records}, LocalLambdaContext(timeout_seconds=2.5), harness.metrics)  # type: ignore[arg-type]
    finally:
        harness.api.configure(latency=0.0)
    put_back = failures(response)
    assert 1 <= len(put_back) < 4
    done = [r for r in records if r["messageId"] not in put_back]
    assert len(harness.events(len(done))) == len(done)
    # At most one call was cut short by the deadline; the other put-back records never started.
    assert len(done) <= harness.api.stats()["total"] <= len(done) + 1 < 4


def put_events_as_aws_answers_a_missing_bus(session: boto3.session.Session) -> list[dict[str, Any]]:
    """PutEvents to a bus that does not exist: AWS answers success with event ids, and drops the events.

    moto answers ResourceNotFoundException instead, which would hide the very fault under test, so the
    client answers as AWS does. DescribeEventBus still goes to moto, which answers it as AWS does.
    """
    sent: list[dict[str, Any]] = []

    def accept(**kwargs: Any) -> tuple[Any, dict[str, Any]]:
        entries = json.loads(kwargs["params"]["body"])["Entries"]
        sent.extend(entries)
        return AWSResponse("https://events", 200, HTTPHeaders(), None), {
            "FailedEntryCount": 0,
            "Entries": [{"EventId": f"dropped-{index}"} for index, _ in enumerate(entries)],
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }

    session.events.register("before-call.events.PutEvents", accept)  # type: ignore[arg-type]
    return sent


def test_a_missing_event_bus_puts_records_back_unstarted_instead_of_publishing_into_nothing(
    harness: Harness, seed: Seeder, function_logs: io.StringIO
) -> None:
    completion = seed({"a": "1"})
    session = boto3.session.Session()
    sent = put_events_as_aws_answers_a_missing_bus(session)
    service = harness.service(session=session, event_bus_name=f"{harness.stack.event_bus_name}-typo")
    harness.metrics.clear_metrics()
    response, records = harness.run(service, [replace(completion, v="1"), replace(seed(), v="1")])

    assert failures(response) == {record["messageId"] for record in records}
    assert harness.api.stats()["total"] == 0  # nothing written whose result event would be lost
    assert harness.api.metadata_of(completion) == {"a": "1"}
    assert sent == []
    assert harness.metrics.metric_set["Error_event_bus_missing"]["Value"] == [2]
    assert "Error_upstream_error" not in harness.metrics.metric_set
    lines = [json.loads(line) for line in function_logs.getvalue().splitlines()]
    [missing] = [line for line in lines if line["level"] == "ERROR"]
    assert missing["event_bus"] == f"{harness.stack.event_bus_name}-typo"
    put_backs = [line for line in lines if line["message"] == "record put back on the queue"]
    assert {line["cause"] for line in put_backs} == {"event_bus_missing"}
    assert all("-typo' for result events does not exist" in line["reason"] for line in put_backs)


def test_the_bus_is_described_once_per_container_then_records_run_as_usual(harness: Harness, seed: Seeder) -> None:
    session = boto3.session.Session()
    described: list[str] = []
    session.events.register(
        "before-call.events.DescribeEventBus", lambda params, **_: described.append(json.loads(params["body"])["Name"])
    )
    service = harness.service(session=session)
    for _ in range(3):
        response, _records = harness.run(service, [replace(seed()), replace(seed())])
        assert response == {"batchItemFailures": []}
    assert described == [harness.stack.event_bus_name]
    assert len(harness.events(6)) == 6
