"""The per-invocation tally from many record threads, and its metrics (docs/operations.md, "Metrics and logs")."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from tagger.logic.outcomes import InvocationOutcomes, OutcomeRecorder
from tagger.logic.service import emit_metrics
from tagger.ports import PutBackRecord

THREADS = 8
ROUNDS = 50


def put_back_record(n: int) -> PutBackRecord:
    return PutBackRecord("arn:aws:sqs:eu-west-1:123456789012:tags", f"receipt-{n}", 1, False, None)


class YieldingCounter(Counter[str]):
    """A Counter that lets other threads run between reading a count and storing the next one."""

    def __getitem__(self, key: str) -> int:
        value = super().__getitem__(key)
        time.sleep(0)
        return value


def run_threads(work: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        start.wait()
        work(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_counts_from_many_threads_add_up_exactly() -> None:
    outcomes = InvocationOutcomes(failed=YieldingCounter(), put_back=YieldingCounter())

    def count(index: int) -> None:
        for n in range(ROUNDS):
            outcomes.count_tagged()
            outcomes.count_duplicate()
            outcomes.count_failed("not_found")
            outcomes.count_put_back("rate_limited", put_back_record(index * ROUNDS + n))
            outcomes.count_api_call(0.002)
            outcomes.count_put_events_call()
            outcomes.count_lease_wait(0.5)
            outcomes.count_lease_contention()
            outcomes.count_superseded(2)

    run_threads(count)
    total = THREADS * ROUNDS
    assert (outcomes.tagged, outcomes.duplicates) == (total, total)
    assert outcomes.failed == {"not_found": total}
    assert outcomes.put_back == {"rate_limited": total}
    assert sorted(record.receipt_handle for record in outcomes.put_back_records) == sorted(
        f"receipt-{n}" for n in range(total)
    )
    assert outcomes.api_calls == total
    assert outcomes.api_latencies_ms == pytest.approx([2.0] * total)
    assert outcomes.put_events_calls == total
    assert outcomes.lease_wait_ms == pytest.approx([500.0] * total)
    assert outcomes.lease_contention == total
    assert outcomes.superseded_keys == 2 * total


def test_counts_are_kept_per_error_code() -> None:
    outcomes = InvocationOutcomes()
    outcomes.count_failed("not_found")
    outcomes.count_failed("invalid_request")
    outcomes.count_failed("not_found")
    outcomes.count_put_back("timeout", put_back_record(1))
    assert outcomes.failed == {"not_found": 2, "invalid_request": 1}
    assert outcomes.put_back == {"timeout": 1}


def test_begin_starts_a_fresh_tally_that_the_callbacks_count_into() -> None:
    recorder = OutcomeRecorder()
    first = recorder.begin()
    recorder.api_call(0.25)
    recorder.put_events_call()
    first.count_tagged()

    second = recorder.begin()
    assert second is not first
    assert recorder.current is second
    assert (second.api_calls, second.put_events_calls, second.tagged) == (0, 0, 0)
    recorder.api_call(0.5)
    assert second.api_calls == 1
    assert second.api_latencies_ms == [500.0]
    # the earlier invocation's tally is left as it was
    assert (first.api_calls, first.api_latencies_ms, first.put_events_calls, first.tagged) == (1, [250.0], 1, 1)


# emit_metrics, through a real Powertools Metrics object


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    metrics = Metrics(namespace="CompletionTaggerUnit", service="unit")
    metrics.clear_metrics()
    yield metrics
    metrics.clear_metrics()


def emitted(metrics: Metrics, printed: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every value and unit per metric name, from the documents Powertools flushed early plus the remaining set."""
    documents = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    documents.append(dict(metrics.serialize_metric_set()))
    values: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "CompletionTaggerUnit"
        for definition in directive["Metrics"]:
            name = definition["Name"]
            units[name] = definition["Unit"]
            value: Any = document[name]
            values.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    return values, units


def test_metrics_name_every_tally_with_its_unit(metrics: Metrics, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes = InvocationOutcomes(tagged=3, duplicates=1, api_calls=2, put_events_calls=1)
    outcomes.failed.update({"not_found": 2, "invalid_request": 1})
    outcomes.put_back.update({"rate_limited": 2, "not_found": 1})
    outcomes.api_latencies_ms.extend([12.5, 40.0])
    outcomes.lease_wait_ms.append(250.0)
    outcomes.lease_contention = 1
    outcomes.superseded_keys = 4
    outcomes.count_settled()
    outcomes.count_requeued()
    outcomes.count_requeued()
    outcomes.metadata_mismatches = 2

    emit_metrics(metrics, outcomes)
    values, units = emitted(metrics, capsys.readouterr().out)

    assert values == {
        "Tagged": [3],
        "Duplicates": [1],
        "Failed": [3],
        "PutBack": [3],
        "Error_invalid_request": [1],
        "Error_not_found": [3],  # failed and put back alike
        "Error_rate_limited": [2],
        "ApiCalls": [2],
        "PutEventsCalls": [1],
        "ApiLatency": [12.5, 40.0],
        "LeaseWaits": [1],
        "LeaseWaitTime": [250.0],
        "LeaseContention": [1],
        "SupersededKeys": [4],
        "UnsettledWritesSettled": [1],
        "RequeuedCopies": [2],
        "MetadataMismatch": [2],
    }
    assert {name for name, unit in units.items() if unit == "Milliseconds"} == {"ApiLatency", "LeaseWaitTime"}
    assert {name for name, unit in units.items() if unit != "Milliseconds"} == set(values) - {
        "ApiLatency",
        "LeaseWaitTime",
    }
    assert set(units.values()) == {"Count", "Milliseconds"}


def test_an_idle_invocation_still_reports_zero_counts(metrics: Metrics, capsys: pytest.CaptureFixture[str]) -> None:
    emit_metrics(metrics, InvocationOutcomes())
    values, _ = emitted(metrics, capsys.readouterr().out)
    assert values == {
        name: [0]
        for name in (
            "Tagged",
            "Duplicates",
            "Failed",
            "PutBack",
            "ApiCalls",
            "PutEventsCalls",
            "LeaseWaits",
            "LeaseContention",
            "SupersededKeys",
            "UnsettledWritesSettled",
            "RequeuedCopies",
            "MetadataMismatch",
        )
    }


def test_at_most_100_latency_and_lease_wait_values_per_invocation(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = InvocationOutcomes(api_calls=150)
    outcomes.api_latencies_ms.extend(float(n) for n in range(150))
    outcomes.lease_wait_ms.extend(float(1000 + n) for n in range(150))

    emit_metrics(metrics, outcomes)
    values, _ = emitted(metrics, capsys.readouterr().out)

    assert values["ApiLatency"] == [float(n) for n in range(100)]
    assert values["LeaseWaitTime"] == [float(1000 + n) for n in range(100)]
    assert values["ApiCalls"] == [150]  # the counts still count every call and wait
    assert values["LeaseWaits"] == [150]
