"""The bench's pure parts: cost arithmetic, per-record summaries, targets and the markdown table."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import pricing, results_summary


def test_cost_of_a_million_requests_adds_up_the_line_items() -> None:
    usage = pricing.Usage(
        batch_size=10,
        duration_seconds=0.5004,  # billed as 501 ms
        memory_mb=256,
        dynamodb_writes_per_record=2,
        dynamodb_reads_per_record=0,
        events_per_record=1,
    )
    cost = pricing.cost_per_million(usage)
    invocations = 100_000
    assert cost.lambda_compute == pytest.approx(invocations * 0.501 * 0.25 * 0.0000133334)
    assert cost.lambda_requests == pytest.approx(0.02)
    assert cost.dynamodb == pytest.approx(1.25)
    assert cost.eventbridge == pytest.approx(1.00)
    assert cost.sqs == pytest.approx(1.2 * 0.40)
    assert cost.total == pytest.approx(sum(v for k, v in cost.as_dict().items() if k != "total"))


@pytest.mark.parametrize(("batch", "expected"), [(1, 3.0), (10, 1.2), (25, 1 + 6 / 25), (100, 1.2)])
def test_queue_requests_per_record(batch: int, expected: float) -> None:
    assert pricing.queue_requests_per_record(batch) == pytest.approx(expected)


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        pricing.queue_requests_per_record(0)


def raw_cell(**overrides: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "batch_size": 10,
        "walls": [0.6, 0.55, 0.7],
        "cpu_seconds": [0.05, 0.04, 0.06],
        "records": 30,
        "api_calls": 60,
        "api_routes": {"GET /v1/chat/completions/{id}": 30, "POST /v1/chat/completions/{id}": 30},
        "aws_calls": {"dynamodb:PutItem": 30, "dynamodb:UpdateItem": 30, "dynamodb:GetItem": 3, "events:PutEvents": 3},
        "put_events_entries": 30,
        "failed_records": 0,
    }
    cell.update(overrides)
    return cell


def test_summary_is_per_record_with_the_median_wall_time() -> None:
    summary = results_summary.summarize_side(raw_cell(), memory_mb=256)
    assert summary["wall_median_s"] == 0.6
    assert summary["cpu_ms_per_record"] == pytest.approx(5.0)
    assert summary["api_calls_per_record"] == 2
    assert summary["dynamodb_per_record"] == pytest.approx(2.1)
    assert summary["dynamodb_writes_per_record"] == 2
    assert summary["dynamodb_reads_per_record"] == pytest.approx(0.1)
    assert summary["put_events_per_record"] == pytest.approx(0.1)
    assert summary["events_per_record"] == 1
    assert math.isclose(summary["cost_per_million_usd"]["eventbridge"], 1.0)


def test_a_cell_without_runs_is_refused() -> None:
    with pytest.raises(ValueError):
        results_summary.summarize_side(raw_cell(walls=[], records=0), memory_mb=256)


def results_with(ours_wall: float, baseline_wall: float, wide_wall: float) -> dict[str, Any]:
    def row(batch: int, mode: str, concurrency: int, ours: float, base: float | None) -> dict[str, Any]:
        return {
            "batch_size": batch,
            "latency_ms": 500,
            "mode": mode,
            "max_concurrency": concurrency,
            "ours": results_summary.summarize_side(raw_cell(batch_size=batch, walls=[ours]), 256),
            "baseline": results_summary.summarize_side(raw_cell(batch_size=batch, walls=[base]), 256) if base else None,
        }

    return {
        "generated_at": "2026-01-01 00:00 UTC",
        "duration_seconds": 1.0,
        "machine": {"cpu": "CPU", "cores": 2, "ram_gb": 4.0, "os": "OS", "python": "3.11.7"},
        "settings": {"function_timeout_seconds": 30, "repeats": 3, "baseline_plan": "plan", "memory_mb": 256},
        "prices": pricing.price_list(),
        "rows": [
            row(10, "replace", 10, ours_wall, baseline_wall),
            row(10, "merge", 10, 2 * ours_wall, 2 * baseline_wall),
            row(100, "replace", 25, wide_wall, None),
        ],
        "init": {
            "runs": 7,
            "python": "3.13.0",
            "probes": {
                name: {
                    "median_ms": ms,
                    "samples_ms": [ms],
                    "modules_imported": 1,
                    "openai_sdk_loaded": False,
                    "rss_mb": 50.0,
                }
                for name, ms in (("bare", 200.0), ("ours", 230.0), ("ours-traced", 300.0), ("baseline", 600.0))
            },
        },
        "memory": {"ours (MAX_CONCURRENCY 10)": {"after_init_mb": 70.0, "peak_mb": 90.0, "largest_batch": "100"}},
        "package": None,
    }


def test_targets_report_met_and_missed_with_margins() -> None:
    results = results_with(ours_wall=0.6, baseline_wall=5.0, wide_wall=2.5)
    targets = {t["target"]: t for t in results_summary.evaluate_targets(results)}
    assert targets["replace, batch 10 @ 500 ms"]["met"] is True  # 1.2× ≤ 1.3×
    assert targets["merge, batch 10 @ 500 ms"]["met"] is False  # 2.4× > 2.3×
    assert targets["merge, batch 10 @ 500 ms"]["margin"].startswith("missed by 0.10×")
    assert targets["replace, batch 10 @ 500 ms vs baseline"]["measured"] == "8.33×"
    assert targets["replace, batch 100 @ 500 ms, MAX_CONCURRENCY 25"]["met"] is False  # 5× > 4.5×
    assert targets["handler init vs bare imports (EnableTracing=false)"]["met"] is True  # 1.15×
    assert targets["handler init vs bare imports (tracing on, the default)"]["met"] is False  # 1.5×
    assert targets["peak RSS, batch of 100"]["met"] is True
    assert targets["deployed package, unzipped"]["met"] is None  # not measured


def test_markdown_has_the_tables_side_by_side() -> None:
    results = results_with(ours_wall=0.6, baseline_wall=5.0, wide_wall=2.2)
    results["targets"] = results_summary.evaluate_targets(results)
    text = results_summary.render(results)
    assert "| 10 | 500 ms | replace | 10 | 600 ms | 1.20× | 5.00 s | 10.00× | 0.120× | 8.3× |" in text
    assert "| 100 | 500 ms | replace | 25 | 2.20 s | 4.40× | – |" in text
    assert "## Cold start" in text and "1.15×" in text
    assert "## Targets" in text
    assert "price of the per-completion lease" not in text  # no leases-off cells in this run


def test_the_lease_is_priced_against_the_same_function_without_it() -> None:
    results = results_with(ours_wall=0.6, baseline_wall=5.0, wide_wall=2.2)
    unleased_calls = {"dynamodb:PutItem": 30, "dynamodb:UpdateItem": 30, "events:PutEvents": 3}
    leased_calls = {**unleased_calls, "dynamodb:UpdateItem": 90}  # take and release: 2 more per record
    for row, wall_off in zip(results["rows"][:2], (0.5, 1.2), strict=True):
        row["ours"] = results_summary.summarize_side(
            raw_cell(aws_calls=leased_calls, walls=[row["ours"]["wall_median_s"]]), 256
        )
        row["ours_no_leases"] = results_summary.summarize_side(
            raw_cell(aws_calls=unleased_calls, walls=[wall_off]), 256
        )
    targets = {t["target"]: t for t in results_summary.evaluate_targets(results)}
    assert targets["per-completion lease: extra DynamoDB requests / record"]["measured"] == "2.00"
    assert targets["per-completion lease: extra DynamoDB requests / record"]["met"] is True
    assert targets["DynamoDB requests / new record (ours)"]["measured"] == "4.00"
    assert targets["DynamoDB requests / new record (ours)"]["met"] is False  # goal: at most 2
    assert targets["DynamoDB reads / new record (ours)"]["met"] is True  # no read
    assert targets["replace, batch 10 @ 500 ms, leases on vs off"]["met"] is False  # 0.6 / 0.5 = 1.2×
    assert targets["merge, batch 10 @ 500 ms, leases on vs off"]["met"] is True  # 1.2 / 1.2
    assert targets["merge, batch 10 @ 500 ms, cost per million requests"]["met"] is not None
    results["targets"] = list(targets.values())
    text = results_summary.render(results)
    assert "## The price of the per-completion lease" in text
    assert "| 10 | 500 ms | replace | 600 ms | 500 ms | 1.200× | 4.00 · 2.00 |" in text


@pytest.mark.parametrize(("value", "shown"), [(None, "–"), (0.0421, "42 ms"), (1.234, "1.23 s"), (12.34, "12.3 s")])
def test_seconds_are_shown_readably(value: float | None, shown: str) -> None:
    assert results_summary.seconds(value) == shown
