"""Backoff across deliveries (ChangeMessageVisibility), against moto's SQS."""

import boto3
import pytest
from moto import mock_aws

from tagger.adapters.visibility import SqsVisibilityBackoff, backoff_seconds
from tagger.ports import PutBackRecord


@pytest.mark.parametrize(("count", "expected"), [(1, 5), (2, 10), (3, 20), (4, 40), (9, 900)])
def test_exponential_schedule_by_receive_count_is_capped(count: int, expected: int) -> None:
    assert backoff_seconds(count, None, base_seconds=5, max_seconds=900) == expected


def test_retry_after_from_the_api_wins() -> None:
    assert backoff_seconds(4, 1.2, base_seconds=5, max_seconds=900) == 2
    assert backoff_seconds(1, 600, base_seconds=5, max_seconds=900) == 600


@pytest.mark.parametrize("retry_after", [901, 43200, 10**9])
def test_retry_after_is_capped_at_the_maximum_backoff(retry_after: float) -> None:
    # Uncapped, a server's Retry-After could keep a message away for 12 hours per delivery, past the
    # idempotency expiry the configuration checks against MAX_RECEIVE_COUNT x RETRY_BACKOFF_MAX_SECONDS.
    assert backoff_seconds(1, retry_after, base_seconds=5, max_seconds=900) == 900


def test_an_exhausted_quota_waits_the_longest_backoff_from_the_first_delivery() -> None:
    assert backoff_seconds(1, None, base_seconds=5, max_seconds=900, longest=True) == 900
    assert backoff_seconds(1, 20.0, base_seconds=5, max_seconds=900, longest=True) == 900
    assert backoff_seconds(1, 1800.0, base_seconds=5, max_seconds=900, longest=True) == 900  # capped all the same


@mock_aws
def test_put_back_records_become_invisible_for_their_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="tags", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(QueueUrl=url, MessageBody="held")
    sqs.send_message(QueueUrl=url, MessageBody="last")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    by_body = {message["Body"]: message["ReceiptHandle"] for message in received}

    SqsVisibilityBackoff(lambda: sqs, base_seconds=30, max_seconds=900).apply(
        [
            PutBackRecord(arn, by_body["held"], receive_count=1, is_last_delivery=False, retry_after=None),
            PutBackRecord(arn, by_body["last"], receive_count=5, is_last_delivery=True, retry_after=None),
        ]
    )

    visible = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    assert visible == ["last"]  # the last delivery is released at once, for the dead-letter queue


@mock_aws
def test_failure_to_change_visibility_loses_nothing() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    SqsVisibilityBackoff(lambda: sqs, 5, 900).apply(
        [PutBackRecord("arn:aws:sqs:us-east-1:123456789012:missing", "rh", 1, False, None)]
    )  # an unknown queue is logged, not raised
