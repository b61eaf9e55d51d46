"""`python -m bench` (`make bench`): ours against the baseline on the local stack, side by side.

Layout of a run:
1. cold start: fresh processes time the handler module's init (ours, the baseline) and the bare imports;
2. one warm process per function (ours at MAX_CONCURRENCY 10 and 25, the baseline), each fed real SQS
   events (sent to and received from a moto queue) for every cell of the matrix: batch size × API latency
   × mode; the local OpenAI server's `latency` knob sets the latency;
3. the deployed package size (pip install of the layer for the template's target);
4. the table (stdout and `tools/bench/results/latest.md`), the raw numbers (`latest.json`), a chart (`latest.png`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import boto3

from artifact import pythons
from artifact import runtime as artifact_runtime
from bench import chart, machine, package_size, results_summary
from bench.functions import Implementation
from bench.pricing import price_list
from completion_tagger.sqs_calls import delete_messages
from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import moto_environment
from local_stack.function_env import FunctionSettings, function_environment
from local_stack.provision import StackNames, StackResources, StackSettings, provision
from local_stack.sqs_records import lambda_sqs_event
from local_stack.template_defaults import REPO_ROOT, load_template_defaults

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

API_KEY = "sk-local-bench-0123456789"
BATCH_SIZES = (1, 10, 100)
# 0 ms: no API wait at all, so those rows show the floor of the local stack (moto, CPU) under each batch.
LATENCIES_MS = (0, 100, 500)
MODES = ("replace", "merge")
DEFAULT_CONCURRENCY = 10
WIDE_CONCURRENCY = 25  # batch 100 only
# Ours with COMPLETION_LEASES=false beside ours, to price the per-completion lease: these cells only.
NO_LEASES_BATCH_SIZES = (10, 100)
NO_LEASES_LATENCIES_MS = (100, 500)
DEFAULT_MEMORY_MB = 256
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SQS_BATCH = 10
RECEIVE_DEADLINE_SECONDS = 30.0
LAMBDA_MB_PER_VCPU = 1769  # Lambda: a function with 1,769 MB has the equivalent of one vCPU
# The local stack's observer rule copies result events to a queue. moto delivers rule targets inside the
# PutEvents call (about 10 ms per matched event), AWS does it asynchronously: so here the observer rule
# matches another source, and the function's PutEvents costs what an unmatched one costs in moto.
BENCH_STACK = StackSettings(visibility_timeout_seconds=600, event_source="completion-tagger-bench-unobserved")


@dataclass(frozen=True)
class Plan:
    repeats: int
    init_runs: int
    batch_sizes: tuple[int, ...]
    full_baseline: bool
    measure_package: bool

    def baseline_repeats(self, batch_size: int, latency_ms: int) -> int:
        """The baseline pays one API round trip per call per record, so its big cells run fewer times."""
        if batch_size >= 100:
            return 1 if (self.full_baseline or latency_ms <= 100) else 0
        if batch_size >= 10:
            return min(self.repeats, 2)
        return self.repeats

    def describe_baseline(self) -> str:
        text = (
            "Baseline runs: as many as ours at batch 1, at most 2 at batch 10, 1 at batch 100 "
            "(a batch of 100 costs it 10–100 s)"
        )
        if 100 in self.batch_sizes and not self.full_baseline:
            text += (
                "; at 500 ms it is not run at batch 100 (about 50 s replace, 100 s merge per run: beyond the "
                "template's 30 s function timeout anyway; `python -m bench --full` runs it)"
            )
        return text + "."


@dataclass
class Cell:
    """Raw measurements of one implementation in one cell of the matrix."""

    implementation: str
    max_concurrency: int
    batch_size: int
    latency_ms: int
    mode: str
    leases: bool = True
    walls: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    records: int = 0
    api_calls: int = 0
    api_routes: Counter[str] = field(default_factory=Counter)
    aws_calls: Counter[str] = field(default_factory=Counter)
    put_events_entries: int = 0
    failed_records: int = 0


class FunctionProcess:
    """A warm function container: `python -m bench.worker <implementation>` (see `bench.worker`)."""

    def __init__(self, label: str, implementation: Implementation, env: dict[str, str]) -> None:
        self.label = label
        self.implementation = implementation
        self.largest_batch = 0
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", implementation],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        ready = self._read()
        self.init_seconds = float(ready["init_seconds"])
        self.rss_after_init_kb = int(ready["rss_kb"])
        self.peak_rss_kb = self.rss_after_init_kb

    def invoke(self, event: dict[str, Any], timeout_seconds: float, memory_mb: int) -> dict[str, Any]:
        assert self._process.stdin is not None
        command = {"op": "invoke", "event": event, "timeout_seconds": timeout_seconds, "memory_mb": memory_mb}
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"{self.label}: the handler raised:\n{reply['error']}")
        self.peak_rss_kb = max(self.peak_rss_kb, int(reply["rss_kb"]))
        self.largest_batch = max(self.largest_batch, len(event["Records"]))
        return reply

    def close(self) -> None:
        if self._process.poll() is None and self._process.stdin is not None:
            try:
                self._process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self._process.stdin.close()
            except OSError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace")[-3000:]
            raise RuntimeError(f"{self.label}: the function process ended unexpectedly:\n{tail}")
        reply: dict[str, Any] = json.loads(line)
        return reply


class Driver:
    """Seeds completions, turns tag requests into a real SQS event, invokes, and reads the counters."""

    def __init__(self, api: LocalOpenAIServer, stack: StackResources, timeout_seconds: float, memory_mb: int) -> None:
        self.api = api
        self.stack = stack
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.sqs: SQSClient = boto3.client("sqs")
        self.run_number = 0

    def run(self, function: FunctionProcess, cell: Cell) -> None:
        self.run_number += 1
        run_tag = f"run{self.run_number}"
        ids = [f"chatcmpl-bench{uuid.uuid4().hex[:20]}" for _ in range(cell.batch_size)]
        existing = {"team": "bench", "stage": "seeded"}
        for completion_id in ids:
            self.api.seed_completion(completion_id, existing)
        requested = {"bench_run": run_tag, "label": cell.mode}
        bodies = [
            json.dumps(
                {
                    "completion_id": completion_id,
                    "metadata": requested,
                    "mode": cell.mode,
                    "request_id": f"{run_tag}-{n}",
                }
            )
            for n, completion_id in enumerate(ids)
        ]
        messages = self._enqueue(bodies)
        event = lambda_sqs_event(messages, self.stack.queue_arn)
        before = self.api.stats()
        reply = function.invoke(event, self.timeout_seconds, self.memory_mb)
        after = self.api.stats()
        self._delete(messages)

        expected = requested if cell.mode == "replace" else {**existing, **requested}
        wrong = sum(1 for completion_id in ids if self.api.metadata_of(completion_id) != expected)
        put_back = len((reply.get("response") or {}).get("batchItemFailures") or [])
        cell.walls.append(float(reply["wall_seconds"]))
        cell.cpu_seconds.append(float(reply["cpu_seconds"]))
        cell.records += cell.batch_size
        cell.api_calls += int(after["total"]) - int(before["total"])
        routes_after: dict[str, int] = after["requests"]
        routes_before: dict[str, int] = before["requests"]
        cell.api_routes.update({route: n - routes_before.get(route, 0) for route, n in routes_after.items()})
        cell.api_routes = +cell.api_routes  # drop zero counts
        cell.aws_calls.update(reply["aws"]["calls"])
        cell.put_events_entries += int(reply["aws"]["put_events_entries"])
        cell.failed_records += max(put_back, wrong)

    def _enqueue(self, bodies: list[str]) -> list[MessageTypeDef]:
        """Send the bodies to the queue and receive them back, as the event source mapping would."""
        for start in range(0, len(bodies), SQS_BATCH):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies[start : start + SQS_BATCH])
            ]
            self.sqs.send_message_batch(QueueUrl=self.stack.queue_url, Entries=entries)
        received: list[MessageTypeDef] = []
        deadline = time.monotonic() + RECEIVE_DEADLINE_SECONDS
        while len(received) < len(bodies):
            if time.monotonic() > deadline:
                raise RuntimeError(f"received {len(received)} of {len(bodies)} messages from the queue")
            response = self.sqs.receive_message(
                QueueUrl=self.stack.queue_url,
                MaxNumberOfMessages=SQS_BATCH,
                VisibilityTimeout=600,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received.extend(response.get("Messages", []))
        return received

    def _delete(self, messages: list[MessageTypeDef]) -> None:
        """What the event source mapping does with a successful batch."""
        delete_messages(self.sqs, self.stack.queue_url, messages)


# ----- the parts of a run -----


def template_memory_mb() -> tuple[int, str]:
    """MemorySize's default in template.yaml (the function's memory), or 256 when it cannot be read."""
    try:
        from cfnlint.decode import decode  # type: ignore[import-untyped]  # noqa: PLC0415

        template, _ = decode(str(REPO_ROOT / "template.yaml"))
        return int(template["Parameters"]["MemorySize"]["Default"]), "template.yaml"
    except Exception as error:
        return DEFAULT_MEMORY_MB, f"default ({type(error).__name__} reading template.yaml)"


def function_env(
    stack: StackResources, api: LocalOpenAIServer, max_concurrency: int, *, leases: bool = True
) -> dict[str, str]:
    """The process environment (moto's AWS variables included) plus the function's, as on Lambda."""
    settings = FunctionSettings(
        openai_base_url=api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.table_name,
        event_bus_name=stack.event_bus_name,
        event_source="completion-tagger",
        max_receive_count=5,
        max_concurrency=max_concurrency,
        retry_backoff_base_seconds=5,
        retry_backoff_max_seconds=900,
        completion_leases=leases,
    )
    env = {**os.environ, **function_environment(settings)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT / "tools"), str(REPO_ROOT)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def measure_init(env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median init of fresh processes, the kinds interleaved so drift hits them alike.

    Ours and the yardstick run as deployed: the artifact `sam build` makes (`make build-host`), on the
    runtime's Python, in a fresh `-I -S` process whose path holds only the artifact and boto3/botocore.
    The baseline needs the openai SDK, which the layer does not ship, so it runs from the development venv.
    """
    runtime = pythons.runtime_python()
    if runtime is None:
        print("bench: no Python 3.13 (the Lambda runtime) here: init not measured", file=sys.stderr)
        return {}
    samples: dict[str, list[dict[str, Any]]] = {"bare": [], "ours": [], "ours-traced": [], "baseline": []}
    # As on Lambda: Powertools (and so the function) trace only where LAMBDA_TASK_ROOT is set.
    untraced = {name: value for name, value in env.items() if name != "POWERTOOLS_TRACE_DISABLED"}
    with tempfile.TemporaryDirectory(prefix="bench-artifact-") as scratch:
        built = artifact_runtime.build_host(Path(scratch))
        runtime_dir = artifact_runtime.runtime_packages(Path(scratch) / "runtime")
        traced_env = {**untraced, "LAMBDA_TASK_ROOT": str(built.function)}
        for _ in range(runs):
            for probe, probe_samples in samples.items():
                if probe == "baseline":
                    probe_samples.append(_venv_probe(probe, env))
                    continue
                result = artifact_runtime.run_probe(
                    runtime,
                    built,
                    runtime_dir,
                    ["init", "bare" if probe == "bare" else "ours"],
                    traced_env if probe == "ours-traced" else env,
                )
                probe_samples.append(result)
    probes = {}
    for probe, results in samples.items():
        milliseconds = [result["init_seconds"] * 1000 for result in results]
        probes[probe] = {
            "median_ms": statistics.median(milliseconds),
            "samples_ms": [round(value, 1) for value in milliseconds],
            "cpu_median_ms": statistics.median(result["init_cpu_seconds"] * 1000 for result in results),
            "modules_imported": results[-1]["modules_imported"],
            "openai_sdk_loaded": results[-1]["openai_sdk_loaded"],
            "xray_sdk_loaded": results[-1]["xray_sdk_loaded"],
            "rss_mb": statistics.median(result["rss_kb"] for result in results) / 1024,
        }
    python = samples["ours"][-1]["python"]
    return {
        "runs": runs,
        "python": python,
        "probes": probes,
        "compile_ms_by_top": _venv_probe("compile", env)["compile_ms_by_top"],
    }


def _venv_probe(probe: str, env: dict[str, str]) -> dict[str, Any]:
    """`bench.init_probe PROBE` in a fresh process of the development venv; its JSON result."""
    command = [sys.executable, "-m", "bench.init_probe", probe]
    done = artifact_runtime.run_or_raise(command, f"init probe {probe}", cwd=REPO_ROOT, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_matrix(plan: Plan, driver: Driver, functions: dict[str, FunctionProcess]) -> list[Cell]:
    cells: list[Cell] = []
    for latency_ms in LATENCIES_MS:
        driver.api.configure(latency=latency_ms / 1000)
        for batch_size in plan.batch_sizes:
            for mode in MODES:
                contenders = [("ours", DEFAULT_CONCURRENCY, True, plan.repeats)]
                if batch_size in NO_LEASES_BATCH_SIZES and latency_ms in NO_LEASES_LATENCIES_MS:
                    contenders.append(("ours", DEFAULT_CONCURRENCY, False, plan.repeats))
                if batch_size >= 100:
                    contenders.append(("ours", WIDE_CONCURRENCY, True, plan.repeats))
                baseline_repeats = plan.baseline_repeats(batch_size, latency_ms)
                contenders.append(("baseline", DEFAULT_CONCURRENCY, True, baseline_repeats))
                group = [
                    (Cell(name, concurrency, batch_size, latency_ms, mode, leases), repeats)
                    for name, concurrency, leases, repeats in contenders
                ]
                for repeat in range(max(repeats for _, repeats in group)):
                    for cell, repeats in group:
                        if repeat < repeats:
                            driver.run(functions[_function_key(cell)], cell)
                cells.extend(cell for cell, _ in group if cell.walls)
                _progress(latency_ms, batch_size, mode, [cell for cell, _ in group if cell.walls])
    return cells


def _function_key(cell: Cell) -> str:
    if cell.implementation == "baseline":
        return "baseline"
    return f"ours-{cell.max_concurrency}" + ("" if cell.leases else "-no-leases")


def _progress(latency_ms: int, batch_size: int, mode: str, cells: list[Cell]) -> None:
    parts = []
    for cell in cells:
        name = "baseline" if cell.implementation == "baseline" else _function_key(cell).replace("-", "/", 1)
        parts.append(f"{name} {results_summary.seconds(statistics.median(cell.walls))}")
    print(f"  {latency_ms} ms, batch {batch_size:>3}, {mode:<7}: " + ", ".join(parts), file=sys.stderr, flush=True)


def build_rows(cells: list[Cell], memory_mb: int) -> list[dict[str, Any]]:
    """One row per (batch, latency, mode, ours' MAX_CONCURRENCY), the baseline's cell beside ours, and at
    MAX_CONCURRENCY 10 ours without leases where it ran."""
    baseline = {(c.batch_size, c.latency_ms, c.mode): c for c in cells if c.implementation == "baseline"}
    no_leases = {(c.batch_size, c.latency_ms, c.mode): c for c in cells if not c.leases}
    rows = []
    for cell in cells:
        if cell.implementation != "ours" or not cell.leases:
            continue
        key = (cell.batch_size, cell.latency_ms, cell.mode)
        base = baseline.get(key)
        unleased = no_leases.get(key) if cell.max_concurrency == DEFAULT_CONCURRENCY else None
        rows.append(
            {
                "batch_size": cell.batch_size,
                "latency_ms": cell.latency_ms,
                "mode": cell.mode,
                "max_concurrency": cell.max_concurrency,
                "ours": results_summary.summarize_side(_raw(cell), memory_mb),
                "ours_no_leases": results_summary.summarize_side(_raw(unleased), memory_mb) if unleased else None,
                "baseline": results_summary.summarize_side(_raw(base), memory_mb) if base else None,
            }
        )
    rows.sort(key=lambda r: (r["latency_ms"], r["batch_size"], r["mode"] != "replace", r["max_concurrency"]))
    return rows


def _raw(cell: Cell) -> dict[str, Any]:
    return {
        "batch_size": cell.batch_size,
        "walls": cell.walls,
        "cpu_seconds": cell.cpu_seconds,
        "records": cell.records,
        "api_calls": cell.api_calls,
        "api_routes": dict(cell.api_routes),
        "aws_calls": dict(cell.aws_calls),
        "put_events_entries": cell.put_events_entries,
        "failed_records": cell.failed_records,
    }


def build_notes(results: dict[str, Any], warm_up: dict[str, float]) -> list[str]:
    notes = [
        "First (warm-up) invocation of each function process, 10 records at 0 ms API latency, not in the "
        "table: " + ", ".join(f"{name} {results_summary.seconds(value)}" for name, value in warm_up.items()) + ".",
        "Merge rows need two API round trips per record (read, then write), so their floor is 2× latency per "
        "wave of MAX_CONCURRENCY records; the MAX_CONCURRENCY 25 target applies to replace (4 waves of 25).",
        "Here DynamoDB, EventBridge and SQS are moto on loopback: a few ms of CPU per call in one process, one "
        "new connection per call, on the same cores as everything else, so concurrent calls queue up. The 0 ms "
        "rows (no API wait at all) show that floor for each batch size; on AWS each call is an independent "
        "network round trip of roughly 5–30 ms instead.",
    ]
    cpu = [row["ours"]["cpu_ms_per_record"] for row in results["rows"] if row["batch_size"] >= 10]
    if cpu:
        memory_mb = results["settings"]["memory_mb"]
        share = memory_mb / LAMBDA_MB_PER_VCPU
        per_record = statistics.median(cpu)
        notes.append(
            f"CPU: ours used {per_record:.1f} ms of CPU per record here (median of the batch ≥ 10 rows; mostly "
            f"botocore for the two DynamoDB writes). Lambda allots CPU in proportion to memory, about {share:.2f} "
            f"vCPU at {memory_mb} MB, so the same work would take roughly {per_record / share:.0f} ms per record "
            f"there, about {per_record / share * 10 / 1000:.2f} s for a batch of 10 and "
            f"{per_record / share * 100 / 1000:.1f} s for a batch of 100, on top of the API waits (a model, not a "
            "measurement: Graviton cores differ, and on AWS keep-alive TLS replaces the new connection moto "
            "needs per call)."
        )
    probes = results.get("init", {}).get("probes", {})
    if probes.get("ours", {}).get("xray_sdk_loaded"):
        notes.append(
            "ours' init loads aws_xray_sdk (Powertools Tracer) even with tracing disabled; importing "
            "aws_xray_sdk.core builds a global recorder that creates two boto3 X-Ray clients."
        )
    for row in results["rows"]:
        base = row.get("baseline")
        if base and base["wall_median_s"] > results["settings"]["function_timeout_seconds"]:
            notes.append(
                f"The baseline's batch of {row['batch_size']} at {row['latency_ms']} ms ({row['mode']}) took "
                f"{results_summary.seconds(base['wall_median_s'])}: on Lambda it would time out at "
                f"{results['settings']['function_timeout_seconds']} s and the whole batch would be retried."
            )
    return notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell for ours (median), default 3")
    parser.add_argument("--init-runs", type=int, default=7, help="fresh processes per init probe, default 7")
    parser.add_argument("--full", action="store_true", help="also run the baseline at batch 100 @ 500 ms (~150 s)")
    parser.add_argument("--quick", action="store_true", help="batch 1 and 10 only, 1 run, 3 init runs, no package")
    parser.add_argument("--no-package", action="store_true", help="skip the package size (needs the package index)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help="where latest.{md,json,png} go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(
        repeats=1 if args.quick else max(args.repeats, 1),
        init_runs=3 if args.quick else max(args.init_runs, 1),
        batch_sizes=(1, 10) if args.quick else BATCH_SIZES,
        full_baseline=args.full,
        measure_package=not (args.quick or args.no_package),
    )
    started = time.monotonic()
    memory_mb, memory_source = template_memory_mb()
    timeout_seconds = float(load_template_defaults().function_timeout_seconds)
    print(f"bench: MemorySize {memory_mb} MB ({memory_source}), timeout {timeout_seconds:.0f} s", file=sys.stderr)

    functions: dict[str, FunctionProcess] = {}
    with moto_environment(), LocalOpenAIServer(api_key=API_KEY) as api:
        stack = provision(StackNames.with_prefix("bench-"), BENCH_STACK)
        print(f"bench: init, {plan.init_runs} fresh processes per probe", file=sys.stderr, flush=True)
        init = measure_init(function_env(stack, api, DEFAULT_CONCURRENCY), plan.init_runs)
        try:
            functions["ours-10"] = FunctionProcess("ours", "ours", function_env(stack, api, DEFAULT_CONCURRENCY))
            functions["ours-10-no-leases"] = FunctionProcess(
                "ours (no leases)", "ours", function_env(stack, api, DEFAULT_CONCURRENCY, leases=False)
            )
            if 100 in plan.batch_sizes:
                functions["ours-25"] = FunctionProcess("ours", "ours", function_env(stack, api, WIDE_CONCURRENCY))
            functions["baseline"] = FunctionProcess("baseline", "baseline", function_env(stack, api, 10))
            driver = Driver(api, stack, timeout_seconds, memory_mb)
            warm_up = {}
            for key, function in functions.items():
                cell = Cell(function.implementation, 0, 10, 0, "replace", leases=not key.endswith("no-leases"))
                driver.run(function, cell)
                warm_up[key] = cell.walls[0]
            print("bench: batches (median wall time per batch)", file=sys.stderr, flush=True)
            cells = run_matrix(plan, driver, functions)
        finally:
            for function in functions.values():
                function.close()
    memory = {
        _memory_label(key): {
            "after_init_mb": function.rss_after_init_kb / 1024,
            "peak_mb": function.peak_rss_kb / 1024,
            "largest_batch": str(function.largest_batch),
        }
        for key, function in functions.items()
    }
    package = None
    if plan.measure_package:
        print("bench: deployed package size (pip install of the layer)", file=sys.stderr, flush=True)
        try:
            package = asdict(package_size.measure(REPO_ROOT, init.get("compile_ms_by_top") or {}))
        except Exception as error:
            print(f"bench: package size not measured: {error}", file=sys.stderr)

    results: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration_seconds": 0.0,
        "machine": machine.describe(),
        "settings": {
            "memory_mb": memory_mb,
            "memory_mb_source": memory_source,
            "function_timeout_seconds": timeout_seconds,
            "repeats": plan.repeats,
            "baseline_plan": plan.describe_baseline(),
            "latencies_ms": list(LATENCIES_MS),
            "batch_sizes": list(plan.batch_sizes),
        },
        "rows": build_rows(cells, memory_mb),
        "init": init,
        "memory": memory,
        "package": package,
        "prices": price_list(),
    }
    results["targets"] = results_summary.evaluate_targets(results)
    results["notes"] = build_notes(results, warm_up)
    results["duration_seconds"] = time.monotonic() - started
    write_outputs(results, args.output_dir)
    return 0


def _memory_label(key: str) -> str:
    if key == "baseline":
        return "baseline"
    return f"ours (MAX_CONCURRENCY {key.split('-')[1]}{', no leases' if key.endswith('no-leases') else ''})"


def write_outputs(results: dict[str, Any], directory: Path) -> None:
    """Print the table and replace latest.md, latest.json and latest.png (written aside, then moved)."""
    markdown = results_summary.render(results)
    print(markdown)
    directory.mkdir(parents=True, exist_ok=True)
    outputs = {
        "latest.md": markdown,
        "latest.json": json.dumps(results, indent=2, sort_keys=True) + "\n",
    }
    for name, text in outputs.items():
        partial = directory / f"{name}.tmp"
        partial.write_text(text, encoding="utf-8")
        partial.replace(directory / name)
    partial_png = directory / "latest.png.tmp"
    chart.draw(results["rows"], partial_png)
    partial_png.replace(directory / "latest.png")
    print(f"bench: wrote {', '.join([*outputs, 'latest.png'])} to {_shown(directory)}", file=sys.stderr)


def _shown(directory: Path) -> str:
    try:
        return str(directory.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(directory)
