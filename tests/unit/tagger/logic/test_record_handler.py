"""The record flow on fakes: each row of the README's "What happens to each message", the idempotent unit, and
the completion's lease."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tagger.errors import CompletionsApiError
from tagger.logic.completion_record import InFlight
from tagger.logic.leases import CONTENDED_DELAY_SECONDS, MAX_WAIT_SECONDS
from tagger.logic.records import ParsedRecord
from tagger.models import TagRequest
from tagger.ports import MAX_COPY_GENERATIONS
from tests.shared.fakes import Rig, put_backs, sqs_record


@pytest.fixture(params=[True, False], ids=["leases", "no-leases"])
def rig(request: pytest.FixtureRequest) -> Rig:
    return Rig(leases=request.param)


def merge(completion_id: str, remove: list[str] | None = None, **metadata: str) -> dict[str, Any]:
    return {"completion_id": completion_id, "metadata": metadata, "remove": remove or [], "request_id": "r-1"}


def replace(completion_id: str, **metadata: str) -> dict[str, Any]:
    return {"completion_id": completion_id, "metadata": metadata, "mode": "replace"}


def server_error(**options: Any) -> CompletionsApiError:
    return CompletionsApiError("upstream_error", "OpenAI API answered 500", retryable=True, status=500, **options)


def test_an_invalid_body_is_published_as_a_validation_error_and_not_put_back(rig: Rig) -> None:
    put_back, outcomes = rig.send({"completion_id": "c1", "metdata": {"a": "1"}, "request_id": "r-9"})
    assert put_back == set()
    [event] = rig.publisher.events()
    assert event["completion_id"] == "c1" and event["request_id"] == "r-9"
    assert event["error"]["code"] == "validation_error" and event["error"]["retryable"] is False
    assert "metdata" in event["error"]["message"]
    assert outcomes.failed["validation_error"] == 1
    assert rig.api.calls == []


def test_a_non_retryable_api_error_ends_as_completion_tag_failed(rig: Rig) -> None:
    put_back, outcomes = rig.send(merge("unknown", a="1"))
    assert put_back == set()
    [event] = rig.publisher.events()
    assert event["error"] == {
        "code": "not_found",
        "message": "OpenAI API answered 404",
        "retryable": False,
        "status": 404,
    }
    assert outcomes.failed["not_found"] == 1 and rig.visibility.applied == []


def test_a_retryable_api_error_puts_the_record_back_with_the_wait_the_api_asked_for(rig: Rig) -> None:
    rig.api.seed("c1")
    rig.api.failures["c1"] = [server_error(retry_after=7.0)]
    put_back, outcomes = rig.send(merge("c1", a="1"))
    assert len(put_back) == 1
    assert rig.publisher.published == []
    assert outcomes.put_back["upstream_error"] == 1
    [record] = rig.visibility.applied
    assert (record.retry_after, record.is_last_delivery, record.receive_count) == (7.0, False, 1)
    assert rig.persistence.completed() == 0  # nothing stored: the redelivery applies it


def test_the_last_delivery_publishes_the_failure_before_it_goes_to_the_dead_letter_queue() -> None:
    rig = Rig(max_receive_count=3)
    rig.api.seed("c1")
    rig.api.failures["c1"] = [server_error()]
    put_back, _ = rig.send(merge("c1", a="1"), receive_count=3)
    assert len(put_back) == 1
    [event] = rig.publisher.events()
    assert event["completion_id"] == "c1" and event["request_id"] == "r-1"
    assert event["error"]["code"] == "upstream_error" and event["error"]["retryable"] is True
    assert rig.visibility.applied[0].is_last_delivery


def test_an_unpublishable_result_is_put_back_and_its_redelivery_publishes_without_a_second_write(rig: Rig) -> None:
    rig.api.seed("c1", {"keep": "1"})
    rig.publisher.accepting = False
    record = sqs_record(merge("c1", a="1"))
    response, _ = rig.run([record])
    assert put_backs(response) == [record["messageId"]]
    assert rig.api.writes("c1") == 1

    rig.publisher.accepting = True
    record["attributes"]["ApproximateReceiveCount"] = "2"
    response, outcomes = rig.run([record])
    assert put_backs(response) == []
    assert rig.api.writes("c1") == 1
    [event] = rig.publisher.events()
    assert event["metadata"] == {"keep": "1", "a": "1"} and event["message_id"] == record["messageId"]
    assert outcomes.tagged == 1

    response, outcomes = rig.run([record])  # once more: now a plain duplicate
    assert put_backs(response) == [] and outcomes.duplicates == 1 and len(rig.publisher.published) == 1


def test_a_duplicate_makes_no_call_and_publishes_nothing(rig: Rig) -> None:
    rig.api.seed("c1")
    rig.send(merge("c1", a="1", b="2"))
    calls = len(rig.api.calls)
    put_back, outcomes = rig.send('{"metadata": {"b": "2", "a": "1"}, "completion_id": "c1", "remove": []}')
    assert put_back == set()
    assert outcomes.duplicates == 1 and outcomes.tagged == 0
    assert len(rig.api.calls) == calls
    assert len(rig.publisher.published) == 1


def test_merge_keeps_other_keys_and_removes_the_named_ones(rig: Rig) -> None:
    rig.api.seed("c1", {"team": "core", "stale": "yes"})
    rig.send(merge("c1", remove=["stale"], reviewed="true"))
    assert rig.api.metadata["c1"] == {"team": "core", "reviewed": "true"}
    assert rig.publisher.events()[0]["metadata"] == {"team": "core", "reviewed": "true"}


def test_replace_is_one_write_of_exactly_what_was_given(rig: Rig) -> None:
    rig.api.seed("c1", {"old": "1"})
    rig.send(replace("c1", new="2"))
    assert rig.api.metadata["c1"] == {"new": "2"}
    assert rig.api.calls == [("POST", "c1")]


def test_a_completion_busy_past_the_deadline_is_put_back_and_counted_as_contention() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.lease_store.held_by["c1"] = "other-container/m0/abc123"
    response, outcomes = rig.run([sqs_record(merge("c1", a="1"))], timeout_seconds=2.2)
    assert len(put_backs(response)) == 1
    assert outcomes.lease_contention == 1 and len(outcomes.lease_wait_ms) == 1
    assert rig.lease_sleeps  # it waited before giving up
    assert rig.api.calls == []
    [record] = rig.visibility.applied
    assert (
        record.retry_after is not None
        and CONTENDED_DELAY_SECONDS[0] <= record.retry_after <= CONTENDED_DELAY_SECONDS[1]
    )


def test_an_unavailable_lease_store_puts_the_record_back_without_an_api_call() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.lease_store.unavailable = True
    put_back, outcomes = rig.send(merge("c1", a="1"))
    assert len(put_back) == 1 and outcomes.put_back["upstream_error"] == 1
    assert rig.api.calls == [] and rig.publisher.published == []


def test_a_write_whose_outcome_is_unknown_keeps_the_lease_for_its_settle_window() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.api.failures["c1"] = [
        CompletionsApiError(
            "timeout", "OpenAI API did not answer in time", retryable=True, retry_after=4.0, outcome_unknown=True
        )
    ]
    put_back, _ = rig.send(replace("c1", a="1"))
    assert len(put_back) == 1
    assert rig.lease_store.extended == [("c1", 4000)]
    assert rig.lease_store.holder("c1") is not None
    assert rig.lease_store.released == []


def test_approve_reject_approve_ends_approved_and_the_same_message_again_is_a_duplicate() -> None:
    rig = Rig()
    rig.api.seed("c1")
    approve = sqs_record(replace("c1", state="approved"))
    for body in (approve, sqs_record(replace("c1", state="rejected")), sqs_record(replace("c1", state="approved"))):
        response, _ = rig.run([body])
        assert put_backs(response) == []
    assert rig.api.metadata["c1"] == {"state": "approved"}
    assert rig.api.writes("c1") == 3
    assert [event["metadata"]["state"] for event in rig.publisher.events()] == ["approved", "rejected", "approved"]

    approve["attributes"]["ApproximateReceiveCount"] = "2"  # the first message, delivered again
    response, outcomes = rig.run([approve])
    assert put_backs(response) == [] and outcomes.duplicates == 1
    assert rig.api.writes("c1") == 3


def test_the_same_content_with_nothing_completed_since_is_a_duplicate_under_leases() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.send(replace("c1", state="approved"))
    _, outcomes = rig.send(replace("c1", state="approved"))
    assert outcomes.duplicates == 1 and rig.api.writes("c1") == 1
    assert rig.lease_store.history("c1").last_completed is not None


def test_contention_on_the_last_delivery_requeues_a_copy_that_keeps_identity_and_order() -> None:
    rig = Rig(max_receive_count=3)
    rig.api.seed("c1")
    rig.lease_store.held_by["c1"] = "other-container/m0/abc123"
    record = sqs_record(merge("c1", a="1"), receive_count=3)
    response, outcomes = rig.run([record])
    assert rig.lease_sleeps and sum(rig.lease_sleeps) <= MAX_WAIT_SECONDS  # waited, but only so long
    assert put_backs(response) == []  # not dead-lettered: the copy carries on
    assert outcomes.requeued_copies == 1 and rig.publisher.published == []
    [copy] = rig.requeue.copies
    assert (copy.message_id, copy.sent_timestamp_ms) == (
        record["messageId"],
        int(record["attributes"]["SentTimestamp"]),
    )
    assert copy.queue_arn == record["eventSourceARN"] and copy.body == record["body"]

    del rig.lease_store.held_by["c1"]
    response, outcomes = rig.run(rig.requeue.as_records())
    assert put_backs(response) == [] and outcomes.tagged == 1
    [event] = rig.publisher.events()
    assert event["message_id"] == record["messageId"]  # the copy is the original message to consumers


def test_a_message_is_requeued_as_a_copy_a_bounded_number_of_times_then_dead_lettered() -> None:
    # A completion that stays busy delivery after delivery (e.g. its own earlier write, answered with a 5xx,
    # keeps it leased each time): the copies must end, in the dead-letter queue with a failure event.
    rig = Rig(max_receive_count=2)
    rig.api.seed("c1")
    rig.lease_store.held_by["c1"] = "other-container/m0/abc123"
    record = sqs_record(merge("c1", a="1"), receive_count=2)
    response, outcomes = rig.run([record])
    for generation in range(1, MAX_COPY_GENERATIONS + 1):
        assert put_backs(response) == [] and outcomes.requeued_copies == 1
        [copy] = rig.requeue.copies
        assert copy.generation == generation and copy.message_id == record["messageId"]
        response, outcomes = rig.run(rig.requeue.as_records(receive_count=2))
    [last] = rig.requeue.copies or [None]  # type: ignore[list-item]
    assert last is None and outcomes.requeued_copies == 0
    assert len(put_backs(response)) == 1  # the last copy goes to the dead-letter queue
    [event] = rig.publisher.events()
    assert event["message_id"] == record["messageId"] and event["error"]["retryable"] is True


def test_a_copy_that_cannot_be_sent_falls_back_to_the_dead_letter_queue_with_a_failure_event() -> None:
    rig = Rig(max_receive_count=3)
    rig.api.seed("c1")
    rig.lease_store.held_by["c1"] = "other-container/m0/abc123"
    rig.requeue.accepting = False
    record = sqs_record(merge("c1", a="1"), receive_count=3)
    response, outcomes = rig.run([record])
    assert put_backs(response) == [record["messageId"]]
    [event] = rig.publisher.events()
    assert event["error"]["retryable"] is True and outcomes.requeued_copies == 0


def test_an_applied_write_whose_event_is_lost_on_the_last_delivery_is_requeued_not_dead_lettered() -> None:
    rig = Rig(max_receive_count=2)
    rig.api.seed("c1")
    rig.publisher.accepting = False
    record = sqs_record(merge("c1", a="1"), receive_count=2)
    response, outcomes = rig.run([record])
    assert put_backs(response) == [] and outcomes.requeued_copies == 1
    assert rig.api.writes("c1") == 1 and rig.publisher.published == []

    rig.publisher.accepting = True
    response, outcomes = rig.run(rig.requeue.as_records())
    assert put_backs(response) == [] and rig.api.writes("c1") == 1  # published from the record, not written again
    [event] = rig.publisher.events()
    assert event["message_id"] == record["messageId"] and event["metadata"] == {"a": "1"}


def test_a_retryable_api_failure_on_the_last_delivery_is_still_dead_lettered() -> None:
    rig = Rig(max_receive_count=2)
    rig.api.seed("c1")
    rig.api.failures["c1"] = [server_error()]
    record = sqs_record(merge("c1", a="1"), receive_count=2)
    response, outcomes = rig.run([record])
    assert put_backs(response) == [record["messageId"]] and rig.requeue.copies == []
    assert outcomes.requeued_copies == 0


def last_delivery_failing_with_events_refused(*, copies_accepted: bool) -> tuple[Rig, dict[str, Any], Any, Any]:
    """A last delivery whose read fails (retryable) while EventBridge refuses every event."""
    rig = Rig(max_receive_count=2)
    rig.api.seed("c1")
    rig.api.failures["c1"] = [server_error()]
    rig.publisher.accepting = False
    rig.requeue.accepting = copies_accepted
    record = sqs_record(merge("c1", a="1"), receive_count=2)
    response, outcomes = rig.run([record])
    return rig, record, response, outcomes


def test_a_failure_event_that_cannot_be_published_on_the_last_delivery_goes_back_as_a_copy() -> None:
    rig, record, response, outcomes = last_delivery_failing_with_events_refused(copies_accepted=True)
    assert put_backs(response) == [] and outcomes.requeued_copies == 1  # not dead-lettered without its event
    [failure] = rig.publisher.refused
    assert failure.model_dump()["error"]["retryable"] is True

    rig.publisher.accepting = True
    response, _ = rig.run(rig.requeue.as_records())
    assert put_backs(response) == [] and rig.api.metadata["c1"] == {"a": "1"}  # the copy tried again
    [event] = rig.publisher.events()
    assert event["message_id"] == record["messageId"] and event["metadata"] == {"a": "1"}


def test_a_failure_event_that_cannot_be_published_nor_copied_is_dead_lettered() -> None:
    _, record, response, outcomes = last_delivery_failing_with_events_refused(copies_accepted=False)
    assert put_backs(response) == [record["messageId"]] and outcomes.requeued_copies == 0


def test_a_new_request_makes_two_lease_store_calls_and_a_duplicate_too() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.send(merge("c1", a="1"))
    assert rig.lease_store.calls == ["acquire", "release"]
    rig.lease_store.calls.clear()
    _, outcomes = rig.send(merge("c1", a="1"))
    assert outcomes.duplicates == 1 and rig.lease_store.calls == ["acquire", "release"]


def test_a_write_left_unsettled_by_a_crashed_holder_is_settled_before_the_next_request_decides() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.send(replace("c1", state="approved"))  # m-a: completed, last completed
    # m-r rejected; its holder wrote and then died before recording anything.
    rejected = sqs_record(replace("c1", state="rejected"))
    rig.api.update_metadata("c1", {"state": "rejected"}, None)  # type: ignore[arg-type]
    stored = rig.lease_store.leases["c1"]
    stored.in_flight = InFlight.of(
        TagRequest.model_validate(json.loads(rejected["body"])),
        rejected["messageId"],
        "dead/owner/0",
        ParsedRecord(rejected, 0).order_token,
    )
    _, outcomes = rig.send(replace("c1", state="approved"))  # same content as m-a: a new intent, not a duplicate
    assert outcomes.tagged == 1 and outcomes.duplicates == 0 and outcomes.unsettled_settled == 1
    assert rig.api.metadata["c1"] == {"state": "approved"}
    # The crashed message, redelivered, finds itself completed and publishes its event without writing again.
    writes = rig.api.writes("c1")
    rejected["attributes"]["ApproximateReceiveCount"] = "2"
    response, outcomes = rig.run([rejected])
    assert put_backs(response) == [] and rig.api.writes("c1") == writes
    assert rig.publisher.events()[-1]["message_id"] == rejected["messageId"]
    assert rig.publisher.events()[-1]["metadata"] == {"state": "rejected"}


def test_no_copy_is_sent_without_time_left_for_it_in_the_invocation() -> None:
    rig = Rig(max_receive_count=3)
    rig.api.seed("c1")
    rig.lease_store.held_by["c1"] = "other-container/m0/abc123"
    record = sqs_record(merge("c1", a="1"), receive_count=3)
    response, outcomes = rig.run([record], timeout_seconds=2.2)
    assert put_backs(response) == [record["messageId"]] and rig.requeue.copies == []
    assert outcomes.requeued_copies == 0
