"""OrderedConcurrentBatchProcessor: one completion's records in batch order, different completions at once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from tagger.logic.batch import OrderedConcurrentBatchProcessor
from tagger.logic.records import ParsedRecord
from tests.shared.fakes import put_backs, sqs_record

BARRIER_TIMEOUT_SECONDS = 5.0


def run(records: list[dict[str, Any]], handler: Callable[[ParsedRecord], None]) -> PartialItemFailureResponse:
    processor = OrderedConcurrentBatchProcessor(max_concurrency=4, chain_scope=contextlib.nullcontext)
    return process_partial_response(
        event={"Records": records}, record_handler=handler, processor=processor, context=None
    )


def body(completion_id: str, n: int) -> dict[str, Any]:
    return {"completion_id": completion_id, "metadata": {"n": str(n)}}


def test_one_completions_records_are_handled_one_at_a_time_in_batch_order() -> None:
    seen: list[tuple[str, str]] = []
    running: set[str] = set()
    overlapped: list[str] = []
    lock = threading.Lock()

    def handler(record: ParsedRecord) -> None:
        with lock:
            if record.ordering_key in running:
                overlapped.append(record.ordering_key)
            running.add(record.ordering_key)
        time.sleep(0.01)
        with lock:
            running.discard(record.ordering_key)
            seen.append((record.ordering_key, record["body"]))

    records = [sqs_record(body(completion, n)) for n in range(4) for completion in ("c1", "c2")]
    assert put_backs(run(records, handler)) == []
    assert overlapped == []
    for completion in ("c1", "c2"):
        mine = [text for key, text in seen if key == f"completion:{completion}"]
        assert mine == [record["body"] for record in records if f'"{completion}"' in record["body"]]


def test_different_completions_overlap() -> None:
    both_running = threading.Barrier(2, timeout=BARRIER_TIMEOUT_SECONDS)

    def handler(record: ParsedRecord) -> None:
        both_running.wait()  # breaks (and fails the record) unless the other completion runs at the same time

    assert put_backs(run([sqs_record(body("c1", 1)), sqs_record(body("c2", 1))], handler)) == []


def test_only_the_records_that_raised_are_in_the_partial_batch_response_in_batch_order() -> None:
    records = [sqs_record(body(f"c{n}", n)) for n in range(5)]
    first, second = records[1]["messageId"], records[3]["messageId"]
    processor = OrderedConcurrentBatchProcessor(max_concurrency=4, chain_scope=contextlib.nullcontext)

    def handler(record: ParsedRecord) -> None:
        if record.message_id == first:
            # Fail only once the later record's failure is registered: completion order is the reverse
            # of batch order, every run.
            give_up = time.monotonic() + BARRIER_TIMEOUT_SECONDS
            while not processor.fail_messages and time.monotonic() < give_up:
                time.sleep(0.001)
            raise RuntimeError("put back")
        if record.message_id == second:
            raise RuntimeError("put back")

    response = process_partial_response(
        event={"Records": records}, record_handler=handler, processor=processor, context=None
    )
    assert put_backs(response) == [first, second]


def test_a_batch_whose_records_all_failed_is_returned_not_raised() -> None:
    records = [sqs_record(body("c1", n)) for n in range(3)]

    def handler(record: ParsedRecord) -> None:
        raise RuntimeError("put back")

    assert put_backs(run(records, handler)) == [record["messageId"] for record in records]


def test_unreadable_bodies_are_chains_of_their_own() -> None:
    all_running = threading.Barrier(3, timeout=BARRIER_TIMEOUT_SECONDS)
    keys: list[str] = []

    def handler(record: ParsedRecord) -> None:
        keys.append(record.ordering_key)
        all_running.wait()

    records = [sqs_record("not json"), sqs_record('{"completion_id": 5}'), sqs_record("[]")]
    assert put_backs(run(records, handler)) == []
    assert sorted(keys) == sorted(f"message:{record['messageId']}" for record in records)
