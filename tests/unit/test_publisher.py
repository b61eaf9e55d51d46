"""Result events: coalesced into PutEvents calls of at most 10, failed entries resent, callers told."""

import json
import threading
from typing import Any

import boto3
from botocore.stub import Stubber

from tagger.adapters.publisher import EventPublisher
from tagger.models import TagFailedDetail, TaggedDetail


def tagged(i: int) -> TaggedDetail:
    return TaggedDetail(
        completion_id=f"c{i}", metadata={"n": str(i)}, mode="merge", request_id=None, message_id=f"m{i}"
    )


class RecordingEvents:
    """A stand-in EventBridge client that records calls and can reject chosen entries."""

    def __init__(self, reject: set[str] | None = None, reject_times: int = 1):
        self.calls: list[list[dict[str, Any]]] = []
        self.reject = reject or set()
        self.reject_times = reject_times
        self.lock = threading.Lock()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(Entries)
            results = []
            for entry in Entries:
                completion = json.loads(entry["Detail"])["completion_id"]
                if completion in self.reject and self.reject_times > 0:
                    results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
                else:
                    results.append({"EventId": f"id-{completion}"})
            if any("ErrorCode" in r for r in results):
                self.reject_times -= 1
            return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def publish_concurrently(publisher: EventPublisher, count: int) -> list[bool]:
    results: list[bool] = [False] * count
    barrier = threading.Barrier(count)

    def work(i: int) -> None:
        with publisher.participant():
            barrier.wait()
            results[i] = publisher.publish(tagged(i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_a_lone_event_is_sent_at_once_with_the_documented_shape() -> None:
    events = RecordingEvents()
    assert EventPublisher(events, "bus", "completion-tagger").publish(tagged(1))
    [[entry]] = events.calls
    assert entry["Source"] == "completion-tagger"
    assert entry["DetailType"] == "CompletionTagged"
    assert entry["EventBusName"] == "bus"
    assert json.loads(entry["Detail"])["metadata"] == {"n": "1"}


def test_ten_concurrent_records_share_one_call() -> None:
    events = RecordingEvents()
    assert all(publish_concurrently(EventPublisher(events, "bus", "src"), 10))
    assert [len(call) for call in events.calls] == [10]


def test_twenty_five_concurrent_records_need_three_calls_of_at_most_ten() -> None:
    events = RecordingEvents()
    assert all(publish_concurrently(EventPublisher(events, "bus", "src"), 25))
    assert sorted(len(call) for call in events.calls) == [5, 10, 10]


def test_only_failed_entries_are_resent() -> None:
    events = RecordingEvents(reject={"c3"})
    assert all(publish_concurrently(EventPublisher(events, "bus", "src", sleep=lambda _: None), 4))
    assert [len(call) for call in events.calls] == [4, 1]
    assert json.loads(events.calls[1][0]["Detail"])["completion_id"] == "c3"


def test_an_entry_still_failing_after_bounded_resends_is_reported_unpublished() -> None:
    events = RecordingEvents(reject={"c0"}, reject_times=99)
    publisher = EventPublisher(events, "bus", "src", sleep=lambda _: None)
    assert publish_concurrently(publisher, 2) == [False, True]
    assert len(events.calls) == 3  # one call, then two resends of the failed entry only


def test_aws_errors_are_retried_then_reported() -> None:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("put_events", "ThrottlingException", http_status_code=400)
    stubber.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})
    with stubber:
        assert EventPublisher(client, "bus", "src", sleep=lambda _: None).publish(tagged(1))
    stubber.assert_no_pending_responses()


def test_failure_detail_is_published_as_tag_failed() -> None:
    events = RecordingEvents()
    detail = TagFailedDetail(
        completion_id=None,
        request_id=None,
        message_id="m",
        error={"code": "validation_error", "message": "x", "retryable": False},
    )
    assert EventPublisher(events, "bus", "src").publish(detail)
    assert events.calls[0][0]["DetailType"] == "CompletionTagFailed"
