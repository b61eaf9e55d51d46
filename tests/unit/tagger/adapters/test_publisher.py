"""Result events: coalesced into PutEvents calls of at most 10 entries and 256 KB, failed entries resent, callers
told; a detail kept well under 64 KB."""

import json
import threading
from typing import Any

import boto3
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from tagger.adapters.after_write_clients import ATTEMPT_SECONDS, after_write_client_config
from tagger.adapters.event_entries import (
    MAX_CALL_ENTRY_BYTES,
    MAX_DETAIL_BYTES,
    bounded_detail_json,
    entry_size,
    result_entry,
)
from tagger.adapters.publisher import AFTER_PUBLISH_SECONDS, PUBLISH_ATTEMPTS, EventPublisher
from tagger.config import Settings
from tagger.logic.leased_apply import POST_WRITE_CALL_SECONDS
from tagger.logic.timing import Deadline
from tagger.models import TagFailedDetail, TaggedDetail
from tests.shared.fakes import FakeClock, deadline_on


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


# Size: PutEvents takes at most 256 KB of entry size per call, and a detail stays well under 64 KB

CJK = "漢"  # 3 bytes in UTF-8
FOUR_BYTES = "😀"  # 4 bytes in UTF-8


def large(i: int, char: str = CJK) -> TaggedDetail:
    """A detail as large as 16 keys of 64 + 512 characters make it."""
    metadata = {f"{i:02d}{index:02d}".ljust(64, char): char * 512 for index in range(16)}
    return TaggedDetail(completion_id=f"c{i}", metadata=metadata, mode="merge", request_id=None, message_id=f"m{i}")


def publish_all_concurrently(publisher: EventPublisher, details: list[TaggedDetail]) -> list[bool]:
    results = [False] * len(details)
    barrier = threading.Barrier(len(details))

    def work(i: int) -> None:
        with publisher.participant():
            barrier.wait()
            results[i] = publisher.publish(details[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(details))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_entry_size_is_computed_as_eventbridge_documents_it() -> None:
    entry = {"Source": "src", "DetailType": "CompletionTagged", "Detail": '{"a":"漢"}', "EventBusName": "a-long-bus"}
    assert entry_size(entry) == 3 + 16 + len('{"a":"漢"}'.encode())  # the bus name does not count
    assert entry_size({**entry, "Time": "2026-12-04T00:00:00Z", "Resources": ["arn:x", "é"]}) == (
        entry_size(entry) + 14 + 5 + 2
    )


def test_ten_large_events_are_split_into_calls_within_the_request_limit() -> None:
    events = RecordingEvents()
    details = [large(i) for i in range(10)]
    assert sum(entry_size(result_entry(detail, "src", "bus")) for detail in details) > MAX_CALL_ENTRY_BYTES

    assert all(publish_all_concurrently(EventPublisher(events, "bus", "src"), details))

    assert len(events.calls) > 1
    assert all(sum(entry_size(entry) for entry in call) < MAX_CALL_ENTRY_BYTES for call in events.calls)
    published = sorted(json.loads(entry["Detail"])["completion_id"] for call in events.calls for entry in call)
    assert published == sorted(f"c{i}" for i in range(10))


def test_small_events_still_share_one_call_of_ten() -> None:
    events = RecordingEvents()
    assert all(publish_all_concurrently(EventPublisher(events, "bus", "src"), [tagged(i) for i in range(10)]))
    assert [len(call) for call in events.calls] == [10]


def test_the_largest_possible_detail_stays_well_under_64_kb_listing_fewer_superseded_keys() -> None:
    # Every field at its limit in four-byte characters: 16 keys, a 128-character request id, and as many
    # superseded keys as a merge can name (16 set + 64 removed).
    biggest = large(0, FOUR_BYTES).model_copy(
        update={
            "request_id": FOUR_BYTES * 128,
            "superseded": sorted(f"{index:02d}".ljust(64, FOUR_BYTES) for index in range(80)),
        }
    )
    assert len(biggest.model_dump_json().encode()) > MAX_DETAIL_BYTES

    text = bounded_detail_json(biggest)

    assert len(text.encode()) <= MAX_DETAIL_BYTES < 64 * 1024
    detail = json.loads(text)
    assert detail["metadata"] == biggest.metadata  # the API's answer is never cut
    assert detail["request_id"] == biggest.request_id
    assert 0 < len(detail["superseded"]) < 80
    assert detail["superseded"] == biggest.superseded[: len(detail["superseded"])]  # type: ignore[index]


def test_a_detail_within_the_bound_keeps_every_superseded_key() -> None:
    detail = tagged(1).model_copy(update={"superseded": ["a", "b"]})
    assert json.loads(bounded_detail_json(detail))["superseded"] == ["a", "b"]


def test_a_detail_of_escaped_characters_drops_its_superseded_keys_and_stays_under_64_kb() -> None:
    # Control characters take six bytes each in JSON (\u0001): the metadata alone is then over the bound.
    escaped = large(0, "\x01").model_copy(
        update={"request_id": "\x01" * 128, "superseded": [f"{index:02d}".ljust(64, "\x01") for index in range(80)]}
    )
    text = bounded_detail_json(escaped)
    assert len(text.encode()) < 64 * 1024
    assert "superseded" not in json.loads(text)
    assert json.loads(text)["metadata"] == escaped.metadata


# Time: every PutEvents attempt fits in what is left of the invocation


class SlowFailingEvents:
    """An EventBridge that takes `seconds` of the fake clock per call and then fails (a read timeout)."""

    def __init__(self, clock: FakeClock, seconds: float, deadline: Deadline) -> None:
        self.clock = clock
        self.seconds = seconds
        self.deadline = deadline
        self.started_with: list[float] = []  # seconds left in the invocation when each call started

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.started_with.append(self.deadline.until_end())
        self.clock.now += self.seconds
        raise ReadTimeoutError(endpoint_url="https://events.example")


def bound_publisher(seconds_left: float, call_seconds: float) -> tuple[EventPublisher, SlowFailingEvents]:
    clock = FakeClock()
    deadline = deadline_on(clock, seconds_left, reserve_seconds=3.0)
    events = SlowFailingEvents(clock, call_seconds, deadline)
    publisher = EventPublisher(events, "bus", "src", sleep=clock.sleep)
    publisher.bind_deadline(deadline)
    return publisher, events


def test_no_resend_starts_without_time_for_it_and_what_follows() -> None:
    # The first attempt fits in the reserve; a resend would not.
    publisher, events = bound_publisher(seconds_left=ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS, call_seconds=0.01)
    assert publisher.publish(tagged(1)) is False  # the record goes back; its redelivery publishes the event
    assert len(events.started_with) == 1


def test_resends_stop_when_the_next_attempt_would_not_fit() -> None:
    publisher, events = bound_publisher(seconds_left=5.0, call_seconds=ATTEMPT_SECONDS)
    assert publisher.publish(tagged(1)) is False
    assert 1 < len(events.started_with) < PUBLISH_ATTEMPTS
    assert all(left >= ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS for left in events.started_with[1:])


def test_with_time_enough_every_attempt_is_made() -> None:
    publisher, events = bound_publisher(seconds_left=60.0, call_seconds=ATTEMPT_SECONDS)
    assert publisher.publish(tagged(1)) is False
    assert len(events.started_with) == PUBLISH_ATTEMPTS


def test_one_attempt_and_what_follows_fit_in_the_default_time_reserve() -> None:
    config = after_write_client_config(12)
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}  # type: ignore[attr-defined]  # botocore adds no attempts of its own
    assert config.connect_timeout + config.read_timeout == ATTEMPT_SECONDS  # type: ignore[attr-defined]
    reserve = Settings.model_fields["time_reserve_millis"].default / 1000
    assert reserve >= ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS
    assert ATTEMPT_SECONDS == POST_WRITE_CALL_SECONDS  # what the logic budgets for one call after a write
