"""Pure arithmetic and rendering: raw measurements in, summaries, targets and the markdown table out."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from bench.pricing import Usage, cost_per_million

MB = 1024 * 1024
READ_OPERATION_PREFIXES = ("Get", "BatchGet", "Query", "Scan")

# The performance targets (docs/performance.md); never asserted in tests: they are reported.
TARGET_REPLACE_RATIO = 1.3
TARGET_MERGE_RATIO = 2.3
TARGET_SPEED_UP = 6.0
TARGET_WIDE_RATIO = 4.5
TARGET_INIT_RATIO = 1.2
TARGET_PEAK_RSS_MB = 100.0
TARGET_PACKAGE_MB = 15.0
# What the per-completion lease may cost, against the same function with COMPLETION_LEASES=false.
TARGET_LEASE_EXTRA_DYNAMODB = 2.0
TARGET_LEASE_WALL_RATIO = 1.10
TARGET_MERGE_COST_PER_MILLION = 3.75
# A new request (every cell's requests are new): no read, at most two DynamoDB requests.
TARGET_DYNAMODB_REQUESTS_PER_NEW_RECORD = 2.0
TARGET_DYNAMODB_READS_PER_NEW_RECORD = 0.0


def summarize_side(raw: Mapping[str, Any], memory_mb: int) -> dict[str, Any]:
    """One implementation's runs of one cell → medians, calls per record and the cost per million.

    `raw`: batch_size, walls (seconds per run), records (all runs), api_calls, api_routes, aws_calls
    (`service:Operation` → count), put_events_entries, failed_records.
    """
    records = int(raw["records"])
    if records <= 0 or not raw["walls"]:
        raise ValueError("a cell needs at least one run with records")
    aws: Mapping[str, int] = raw["aws_calls"]
    dynamodb = {name.split(":", 1)[1]: count for name, count in aws.items() if name.startswith("dynamodb:")}
    dynamodb_reads = sum(count for name, count in dynamodb.items() if name.startswith(READ_OPERATION_PREFIXES))
    dynamodb_writes = sum(dynamodb.values()) - dynamodb_reads
    put_events = aws.get("events:PutEvents", 0)
    function_sqs = sum(count for name, count in aws.items() if name.startswith("sqs:"))
    wall_median = statistics.median(raw["walls"])
    cpu = raw.get("cpu_seconds") or []
    usage = Usage(
        batch_size=int(raw["batch_size"]),
        duration_seconds=wall_median,
        memory_mb=memory_mb,
        dynamodb_writes_per_record=dynamodb_writes / records,
        dynamodb_reads_per_record=dynamodb_reads / records,
        events_per_record=int(raw["put_events_entries"]) / records,
        function_sqs_requests_per_record=function_sqs / records,
    )
    return {
        "runs": len(raw["walls"]),
        "walls_s": [round(wall, 4) for wall in raw["walls"]],
        "wall_median_s": wall_median,
        "cpu_ms_per_record": statistics.median(cpu) * 1000 / int(raw["batch_size"]) if cpu else None,
        "api_calls_per_record": int(raw["api_calls"]) / records,
        "api_routes": dict(raw["api_routes"]),
        "dynamodb_per_record": sum(dynamodb.values()) / records,
        "dynamodb_writes_per_record": usage.dynamodb_writes_per_record,
        "dynamodb_reads_per_record": usage.dynamodb_reads_per_record,
        "dynamodb_operations": dynamodb,
        "put_events_per_record": put_events / records,
        "events_per_record": usage.events_per_record,
        "aws_calls": dict(aws),
        "failed_records": int(raw["failed_records"]),
        "cost_per_million_usd": cost_per_million(usage).as_dict(),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def find_row(rows: list[dict[str, Any]], batch: int, latency_ms: int, mode: str, concurrency: int) -> dict[str, Any]:
    for row in rows:
        if (row["batch_size"], row["latency_ms"], row["mode"], row["max_concurrency"]) == (
            batch,
            latency_ms,
            mode,
            concurrency,
        ):
            return row
    return {}


def _wall(row: Mapping[str, Any], side: str) -> float | None:
    summary = row.get(side)
    return float(summary["wall_median_s"]) if summary else None


def evaluate_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target: goal, measured value, met or not, and by how much."""
    rows: list[dict[str, Any]] = results["rows"]
    targets: list[dict[str, Any]] = []

    def add(name: str, goal: str, value: float | None, limit: float, unit: str, *, at_least: bool = False) -> None:
        if value is None:
            targets.append({"target": name, "goal": goal, "measured": "not measured", "met": None, "margin": ""})
            return
        met = value >= limit if at_least else value <= limit
        gap = abs(value - limit)
        if at_least:
            margin = f"{gap:.2f}{unit} above" if met else f"missed by {gap:.2f}{unit}"
        else:
            margin = f"{gap:.2f}{unit} under" if met else f"missed by {gap:.2f}{unit} ({value / limit:.2f}× the limit)"
        targets.append({"target": name, "goal": goal, "measured": f"{value:.2f}{unit}", "met": met, "margin": margin})

    for mode, limit in (("replace", TARGET_REPLACE_RATIO), ("merge", TARGET_MERGE_RATIO)):
        row = find_row(rows, 10, 500, mode, 10)
        ours = _wall(row, "ours")
        add(f"{mode}, batch 10 @ 500 ms", f"≤ {limit}× latency", ratio(ours, 0.5), limit, "×")
        add(
            f"{mode}, batch 10 @ 500 ms vs baseline",
            f"≥ {TARGET_SPEED_UP:g}× faster",
            ratio(_wall(row, "baseline"), ours),
            TARGET_SPEED_UP,
            "×",
            at_least=True,
        )
    wide = find_row(rows, 100, 500, "replace", 25)
    add("replace, batch 100 @ 500 ms, MAX_CONCURRENCY 25", f"≤ {TARGET_WIDE_RATIO}× latency",
        ratio(_wall(wide, "ours"), 0.5), TARGET_WIDE_RATIO, "×")  # fmt: skip

    leased = [row for row in rows if row.get("ours_no_leases")]
    extra = [lease_extra_dynamodb(row) for row in leased]
    add("per-completion lease: extra DynamoDB requests / record", f"≤ {TARGET_LEASE_EXTRA_DYNAMODB:g}",
        max(extra) if extra else None, TARGET_LEASE_EXTRA_DYNAMODB, "")  # fmt: skip
    leased_sides = [row["ours"] for row in leased]
    add("DynamoDB requests / new record (ours)", f"≤ {TARGET_DYNAMODB_REQUESTS_PER_NEW_RECORD:g}",
        max(side["dynamodb_per_record"] for side in leased_sides) if leased_sides else None,
        TARGET_DYNAMODB_REQUESTS_PER_NEW_RECORD, "")  # fmt: skip
    add("DynamoDB reads / new record (ours)", f"≤ {TARGET_DYNAMODB_READS_PER_NEW_RECORD:g}",
        max(side["dynamodb_reads_per_record"] for side in leased_sides) if leased_sides else None,
        TARGET_DYNAMODB_READS_PER_NEW_RECORD, "")  # fmt: skip
    for mode in ("replace", "merge"):
        row = find_row(rows, 10, 500, mode, 10)
        add(f"{mode}, batch 10 @ 500 ms, leases on vs off", f"≤ {TARGET_LEASE_WALL_RATIO:.2f}×",
            ratio(_wall(row, "ours"), _wall(row, "ours_no_leases")), TARGET_LEASE_WALL_RATIO, "×")  # fmt: skip
    merge = find_row(rows, 10, 500, "merge", 10)
    cost = merge["ours"]["cost_per_million_usd"]["total"] if merge.get("ours") else None
    add("merge, batch 10 @ 500 ms, cost per million requests", f"≤ ${TARGET_MERGE_COST_PER_MILLION:.2f}",
        cost, TARGET_MERGE_COST_PER_MILLION, " USD")  # fmt: skip

    init = results.get("init", {}).get("probes", {})
    bare_init = init.get("bare", {}).get("median_ms")
    for probe, label in (("ours-traced", "tracing on, the default"), ("ours", "EnableTracing=false")):
        ours_init = init.get(probe, {}).get("median_ms")
        add(f"handler init vs bare imports ({label})", f"≤ {TARGET_INIT_RATIO}× bare", ratio(ours_init, bare_init),
            TARGET_INIT_RATIO, "×")  # fmt: skip

    memory = results.get("memory", {})
    ours_peaks = [entry["peak_mb"] for name, entry in memory.items() if name.startswith("ours")]
    add("peak RSS, batch of 100", f"≤ {TARGET_PEAK_RSS_MB:g} MB", max(ours_peaks) if ours_peaks else None,
        TARGET_PEAK_RSS_MB, " MB")  # fmt: skip

    package = results.get("package") or {}
    stripped = package.get("total_stripped_bytes")
    add("deployed package, unzipped", f"≤ {TARGET_PACKAGE_MB:g} MB", stripped / MB if stripped else None,
        TARGET_PACKAGE_MB, " MB")  # fmt: skip
    return targets


# ----- rendering -----


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def times(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}×"


def pair(row: Mapping[str, Any], key: str, digits: int = 2) -> str:
    ours = row["ours"].get(key) if row.get("ours") else None
    base = row["baseline"].get(key) if row.get("baseline") else None
    return " · ".join("–" if value is None else f"{value:.{digits}f}" for value in (ours, base))


def money(value: float | None) -> str:
    return "–" if value is None else f"${value:,.2f}"


def table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


CELL_HEADER = ["batch", "API latency", "mode", "MAX_CONCURRENCY"]


def cell_columns(row: Mapping[str, Any]) -> list[str]:
    """The cell a row measured, under CELL_HEADER: batch size, API latency, mode and MAX_CONCURRENCY."""
    return [str(row["batch_size"]), f"{row['latency_ms']} ms", row["mode"], str(row["max_concurrency"])]


def batch_table(rows: list[dict[str, Any]]) -> str:
    header = [
        *CELL_HEADER,
        "ours (median)",
        "ours ÷ latency",
        "baseline (median)",
        "baseline ÷ latency",
        "ours / baseline",
        "speed-up",
        "API calls / record (ours · baseline)",
        "DynamoDB requests / record",
        "PutEvents calls / record",
        "CPU ms / record",
        "runs",
        "failed records",
    ]
    lines = []
    for row in rows:
        latency = row["latency_ms"] / 1000
        ours, base = _wall(row, "ours"), _wall(row, "baseline")
        failed = sum(row[side]["failed_records"] for side in ("ours", "baseline") if row.get(side))
        runs = " · ".join(str(row[side]["runs"]) if row.get(side) else "–" for side in ("ours", "baseline"))
        lines.append(
            [
                *cell_columns(row),
                seconds(ours),
                times(ratio(ours, latency)),
                seconds(base),
                times(ratio(base, latency)),
                times(ratio(ours, base), 3),
                times(ratio(base, ours), 1),
                pair(row, "api_calls_per_record"),
                pair(row, "dynamodb_per_record"),
                pair(row, "put_events_per_record"),
                pair(row, "cpu_ms_per_record", 1),
                runs,
                str(failed),
            ]
        )
    return table(header, lines)


def cost_table(rows: list[dict[str, Any]]) -> str:
    header = [
        *CELL_HEADER,
        "ours: Lambda compute",
        "ours: total",
        "baseline: Lambda compute",
        "baseline: total",
        "ours / baseline",
    ]
    lines = []
    for row in rows:
        if row["latency_ms"] == 0:
            continue  # the local stack's floor, not a workload
        ours = row["ours"]["cost_per_million_usd"] if row.get("ours") else None
        base = row["baseline"]["cost_per_million_usd"] if row.get("baseline") else None
        lines.append(
            [
                *cell_columns(row),
                money(ours["lambda_compute"] if ours else None),
                money(ours["total"] if ours else None),
                money(base["lambda_compute"] if base else None),
                money(base["total"] if base else None),
                times(ratio(ours["total"] if ours else None, base["total"] if base else None), 2),
            ]
        )
    return table(header, lines)


def lease_extra_dynamodb(row: Mapping[str, Any]) -> float:
    """DynamoDB requests per record that the lease adds (ours with it, less ours without)."""
    return float(row["ours"]["dynamodb_per_record"]) - float(row["ours_no_leases"]["dynamodb_per_record"])


def lease_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "batch",
        "API latency",
        "mode",
        "leases on (median)",
        "leases off (median)",
        "on ÷ off",
        "DynamoDB requests / record (on · off)",
        "API calls / record (on · off)",
        "CPU ms / record (on · off)",
        "USD per million (on · off)",
    ]
    lines = []
    for row in rows:
        if not row.get("ours_no_leases"):
            continue
        on, off = row["ours"], row["ours_no_leases"]
        lines.append(
            [
                str(row["batch_size"]),
                f"{row['latency_ms']} ms",
                row["mode"],
                seconds(on["wall_median_s"]),
                seconds(off["wall_median_s"]),
                times(ratio(on["wall_median_s"], off["wall_median_s"]), 3),
                f"{on['dynamodb_per_record']:.2f} · {off['dynamodb_per_record']:.2f}",
                f"{on['api_calls_per_record']:.2f} · {off['api_calls_per_record']:.2f}",
                f"{on['cpu_ms_per_record'] or 0:.1f} · {off['cpu_ms_per_record'] or 0:.1f}",
                f"{money(on['cost_per_million_usd']['total'])} · {money(off['cost_per_million_usd']['total'])}",
            ]
        )
    return table(header, lines)


def breakdown_table(row: Mapping[str, Any]) -> str:
    items = ("lambda_compute", "lambda_requests", "dynamodb", "eventbridge", "sqs", "total")
    lines = []
    for item in items:
        values = [row[side]["cost_per_million_usd"][item] if row.get(side) else None for side in ("ours", "baseline")]
        lines.append([item.replace("_", " "), *(money(value) for value in values)])
    return table(["line item (USD per million tag requests)", "ours", "baseline"], lines)


def init_table(init: Mapping[str, Any]) -> str:
    probes = init["probes"]
    bare = probes.get("bare", {}).get("median_ms")
    bare_cpu = probes.get("bare", {}).get("cpu_median_ms")
    labels = {
        "bare": "bare `import boto3, httpx, pydantic` + 2 boto3 clients (same interpreter and layer)",
        "ours": "ours, built artifact: `import tagger.app` (imports + clients), EnableTracing=false",
        "ours-traced": "ours, built artifact, X-Ray tracing on (the template's default)",
        "baseline": "baseline: `import bench.baseline.app` (openai SDK; development venv)",
    }
    lines = []
    for name in ("bare", "ours", "ours-traced", "baseline"):
        probe = probes.get(name)
        if not probe:
            continue
        lines.append(
            [
                labels[name],
                f"{probe['median_ms']:.0f} ms",
                f"{min(probe['samples_ms']):.0f}–{max(probe['samples_ms']):.0f} ms",
                times(ratio(probe["median_ms"], bare)),
                f"{probe['cpu_median_ms']:.0f} ms" if "cpu_median_ms" in probe else "–",
                times(ratio(probe.get("cpu_median_ms"), bare_cpu)),
                str(probe["modules_imported"]),
                "yes" if probe["openai_sdk_loaded"] else "no",
                "yes" if probe.get("xray_sdk_loaded") else "no",
                f"{probe['rss_mb']:.0f} MB",
            ]
        )
    header = ["init (fresh process)", "median", "range", "÷ bare", "CPU", "CPU ÷ bare", "modules loaded", "openai SDK"]
    header.append("X-Ray SDK")
    header.append("RSS after init")
    return table(header, lines)


def memory_table(memory: Mapping[str, Any]) -> str:
    lines = [
        [name, f"{entry['after_init_mb']:.0f} MB", f"{entry['peak_mb']:.0f} MB", entry.get("largest_batch", "")]
        for name, entry in memory.items()
    ]
    return table(["function process", "after init", "peak (VmHWM)", "largest batch it ran"], lines)


def package_table(package: Mapping[str, Any]) -> str:
    def mb(key: str) -> str:
        return f"{package[key] / MB:.1f} MB"

    pulled_in = package.get("runtime_provided_in_layer") or []
    as_installed = "layer as pip installs it (with bytecode" + (
        f"; and {', '.join(pulled_in)}, pulled in by dependencies)" if pulled_in else ")"
    )
    lines = [
        ["function code (functions/)", f"{package['function_bytes'] / 1024:.0f} KB"],
        [as_installed, mb("layer_as_installed_bytes")],
        ["layer without what the Lambda runtime provides", mb("layer_bytes")],
        ["function + layer, before stripping", mb("total_bytes")],
        ["function + layer, after stripping tests and *.pyi only (bytecode kept)",
         f"{(package['function_bytes'] + package['layer_stripped_keeping_bytecode_bytes']) / MB:.1f} MB"],
        ["function + layer, after stripping tests, caches, *.pyi", mb("total_stripped_bytes")],
        ["... zipped (deflate)", mb("total_stripped_zipped_bytes")],
    ]  # fmt: skip
    largest = ", ".join(f"{name} {size / MB:.1f} MB" for name, size in package.get("largest", []))
    text = table(["deployed package (unzipped)", "size"], lines)
    if largest:
        text += f"\n\nLargest entries of the stripped layer: {largest}."
    if package.get("compile_ms_without_bytecode"):
        text += (
            f" Without `__pycache__`, every cold start compiles the layer modules the handler loads: about "
            f"{package['compile_ms_without_bytecode']:.0f} ms on this machine (Lambda's code directories are "
            "read-only, so the compiled bytecode is never kept)."
        )
    return text


def targets_table(targets: list[dict[str, Any]]) -> str:
    verdicts = {True: "met", False: "**missed**", None: "not measured"}
    lines = [[t["target"], t["goal"], t["measured"], verdicts[t["met"]], t["margin"]] for t in targets]
    return table(["target", "goal", "measured", "verdict", "margin"], lines)


def render(results: Mapping[str, Any]) -> str:
    machine = results["machine"]
    settings = results["settings"]
    rows: list[dict[str, Any]] = results["rows"]
    parts = [
        "# completion-tagger bench: ours vs the straightforward baseline",
        "",
        f"Run {results['generated_at']} in {results['duration_seconds']:.0f} s on {machine['cpu']}, "
        f"{machine['cores']} cores, {machine['ram_gb']:.1f} GB RAM, {machine['os']}, Python {machine['python']}.",
        "",
        "Local stack: moto's server as AWS and the local OpenAI server (its `latency` knob delays every API "
        "request) run in the bench's parent process; each function runs warm in a process of its own "
        f"(after one unmeasured warm-up batch), with a {settings['function_timeout_seconds']} s context. "
        "Every run uses fresh completion ids, sent through and received from a real (moto) SQS queue. "
        f"Wall time is the handler call; medians of {settings['repeats']} runs (ours). "
        f"{settings['baseline_plan']}",
        "",
        "## Wall time per batch, calls per record",
        "",
        batch_table(rows),
        "",
        "API calls: counted by the local OpenAI server. DynamoDB and PutEvents: botocore `before-call` hooks in "
        "the function's process. CPU: the function process' CPU time (all threads) during the handler call, on "
        "this machine's cores; Lambda gives a function about MemorySize / 1769 of a vCPU. "
        "`·` separates ours from the baseline.",
        "",
        "## Estimated cost per million tag requests (USD)",
        "",
        f"Lambda arm64 at the template's MemorySize ({settings['memory_mb']} MB) for the measured median wall time "
        "per batch, plus Lambda requests, DynamoDB on-demand request units, EventBridge custom events and SQS "
        "requests (producer SendMessage, event source ReceiveMessage and DeleteMessageBatch). "
        f"List prices, {results['prices']['region']}, checked {results['prices']['checked_on']}: see "
        "`tools/bench/pricing.py`. Cold-start init, CloudWatch Logs and the free tiers are not included.",
        "",
        cost_table(rows),
    ]
    example = find_row(rows, 10, 500, "merge", 10)
    if example:
        parts += ["", "Breakdown, batch 10 @ 500 ms, merge:", "", breakdown_table(example)]
    if any(row.get("ours_no_leases") for row in rows):
        parts += [
            "",
            "## The price of the per-completion lease",
            "",
            "Ours as deployed (COMPLETION_LEASES=true) beside the same function with COMPLETION_LEASES=false, in "
            "the same run, cell by cell. With leases the completion's record replaces Powertools' record: one "
            "UpdateItem takes the lease and writes the request in flight (returning the record), one conditional "
            "PutItem writes the outcome and releases it; no read. Without, Powertools' in-progress and completed "
            "writes. Billed units, which grow with the record: `python -m bench.record_units`.",
            "",
            lease_table(rows),
        ]
    if results.get("init"):
        parts += [
            "",
            "## Cold start",
            "",
            f"Median of {results['init']['runs']} fresh processes each; only the import and client creation are "
            "timed (not the interpreter's start). Ours and the yardstick run the artifact `sam build` makes "
            "(`make build-host`: the template's build, wheels for this machine) on Python "
            f"{results['init']['python']}, in a fresh `-I -S` process whose import path holds only the built function, "
            "the built layer and boto3/botocore, as on Lambda; the baseline needs the openai SDK, so it runs from "
            "the development venv. CPU is the process's CPU time over the same span: steadier than wall time when "
            "other work shares the machine.",
            "",
            init_table(results["init"]),
        ]
    if results.get("memory"):
        parts += ["", "## Memory", "", memory_table(results["memory"])]
    if results.get("package"):
        parts += [
            "",
            "## Deployed package",
            "",
            f"Layer installed for: {results['package']['platform']}; its bytecode compiled by pip with this "
            f"machine's Python {results['package'].get('bytecode_python', '?')} (a 3.13 build's is of similar "
            "size). Excluded as provided by the Lambda runtime: boto3, botocore, s3transfer, jmespath, urllib3, "
            "dateutil, six.",
            "",
            package_table(results["package"]),
        ]
    parts += ["", "## Targets", "", targets_table(results["targets"])]
    notes = results.get("notes") or []
    if notes:
        parts += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(parts) + "\n"
