"""`python -m bench.record_units`: what a tag request costs in DynamoDB, by request and by billed unit.

Request counts alone price every write at one unit, but DynamoDB bills a write by the larger of the item
before and after it (1 unit per started KB) and a read by the item read (`bench.item_size`). The
per-completion record grows with the completion: its key versions (up to the window) and the requests it
remembers. So this measures, on moto and the local OpenAI server, one record at a time through the real
handler, every DynamoDB call the function makes: a botocore hook sizes the item before the call and after
it with a separate client of its own (not counted), as DynamoDB would bill it.

Side by side: ours as deployed, ours with `COMPLETION_LEASES=false`, and the baseline (`tools/bench/baseline`).
Scenarios: the bench's usual requests on a fresh completion (a merge and a replace of two keys onto two),
the same message delivered again, and a merge on a completion with 16 keys whose record holds a full key
version window (every key it tracks named, by earlier merges that each set 16 keys and removed 16).

Writes `tools/bench/results/record-units.md` and `record-units.json`; the cost per million uses the list prices
of `tools/bench/pricing.py` and, for the whole bill, the latest `make bench` run's other line items
(`tools/bench/results/latest.json`, merge at batch 10 and 500 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bench.client_hooks import on_every_new_client
from bench.item_size import item_size, read_units, write_units
from bench.pricing import DYNAMODB_USD_PER_READ_REQUEST_UNIT, DYNAMODB_USD_PER_WRITE_REQUEST_UNIT, MILLION
from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import moto_environment
from local_stack.lambda_context import LocalLambdaContext
from local_stack.provision import StackNames, StackResources, StackSettings, provision
from local_stack.sqs_records import lambda_sqs_event

API_KEY = "sk-local-bench-0123456789"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SEEDED = {"team": "bench", "stage": "seeded"}
WINDOW_ROUNDS = 10  # 10 merges naming 32 keys each: past any key version window of up to 320 keys
BUSY_ROUNDS = 70  # past any bound on the completed requests a record remembers of up to 70
TARGET_READS_PER_NEW_REQUEST = 0
TARGET_REQUESTS_PER_NEW_REQUEST = 2
TARGET_MERGE_COST_PER_MILLION = 3.75
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class CallUnits:
    operation: str
    write_units: float = 0.0
    read_units: float = 0.0
    largest_item_bytes: int = 0
    attribute_bytes: dict[str, int] = field(default_factory=dict)  # of the largest item, by attribute


@dataclass
class Measured:
    """The DynamoDB calls of one record."""

    calls: list[CallUnits] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return sum(1 for call in self.calls if call.operation.startswith(("Get", "BatchGet", "Query", "TransactGet")))

    @property
    def writes(self) -> int:
        return len(self.calls) - self.reads

    @property
    def write_units(self) -> float:
        return sum(call.write_units for call in self.calls)

    @property
    def read_units(self) -> float:
        return sum(call.read_units for call in self.calls)

    @property
    def largest_item_bytes(self) -> int:
        return max((call.largest_item_bytes for call in self.calls), default=0)

    @property
    def usd_per_million(self) -> float:
        writes = self.write_units * DYNAMODB_USD_PER_WRITE_REQUEST_UNIT
        return MILLION * (writes + self.read_units * DYNAMODB_USD_PER_READ_REQUEST_UNIT)

    def summary(self) -> dict[str, Any]:
        largest = max(self.calls, key=lambda call: call.largest_item_bytes, default=None)
        return {
            "largest_item_attributes": largest.attribute_bytes if largest else {},
            "operations": [call.operation for call in self.calls],
            "requests": len(self.calls),
            "reads": self.reads,
            "writes": self.writes,
            "write_units": self.write_units,
            "read_units": self.read_units,
            "largest_item_bytes": self.largest_item_bytes,
            "dynamodb_usd_per_million": round(self.usd_per_million, 4),
        }


class ItemMeter:
    """Sizes the items every DynamoDB call of the function touches, before and after the call."""

    def __init__(self, table_name: str) -> None:
        self._probe = boto3.client("dynamodb")  # made before the hook is installed: never measured
        self._table = table_name
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, list[dict[str, Any]], list[int], bool, list[Any]]] = {}
        self.measured = Measured()

    def take(self) -> Measured:
        with self._lock:
            measured, self.measured = self.measured, Measured()
        return measured

    def install(self) -> None:
        """Register the hooks on every DynamoDB client created from now on (the function's, at its init)."""
        on_every_new_client(self._register)

    def _register(self, client: Any) -> None:
        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("before-parameter-build.dynamodb", self.before)
            client.meta.events.register("after-call.dynamodb", self.after)

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        keys, transactional = self._keys(model.name, params)
        items = [self._item(key) for key in keys]
        sizes = [item_size(item) for item in items]
        with self._lock:
            self._pending[threading.get_ident()] = (model.name, keys, sizes, transactional, items)

    def after(self, model: Any, **_: Any) -> None:
        with self._lock:
            operation, keys, before, transactional, items = self._pending.pop(threading.get_ident())
        items += [self._item(key) for key in keys]
        after = [item_size(item) for item in items[len(keys) :]]
        biggest = max(items, key=item_size, default=None) or {}
        call = CallUnits(
            operation,
            largest_item_bytes=max(before + after, default=0),
            attribute_bytes={name: item_size({name: value}) for name, value in biggest.items()},
        )
        if operation in ("GetItem", "TransactGetItems"):
            call.read_units = sum(read_units(size, consistent=True, transactional=transactional) for size in before)
        else:
            call.write_units = float(
                sum(write_units(b, a, transactional=transactional) for b, a in zip(before, after, strict=True))
            )
        with self._lock:
            self.measured.calls.append(call)

    def _keys(self, operation: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        if operation == "PutItem":
            return [{"id": params["Item"]["id"]}], False
        if operation in ("GetItem", "UpdateItem", "DeleteItem"):
            return [params["Key"]], False
        if operation in ("TransactWriteItems", "TransactGetItems"):
            keys = []
            for entry in params["TransactItems"]:
                [(kind, action)] = entry.items()
                keys.append({"id": action["Item"]["id"]} if kind == "Put" else action["Key"])
            return keys, True
        raise ValueError(f"no unit rule for DynamoDB {operation}: add one to bench.record_units")

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._probe.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item


class Stack:
    """The queue, the table and the API one implementation's records go through."""

    def __init__(self, api: LocalOpenAIServer, resources: StackResources) -> None:
        self.api = api
        self.resources = resources
        self.sqs = boto3.client("sqs")

    def event(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body sent to the queue and received back, as Lambda would deliver it."""
        self.sqs.send_message(QueueUrl=self.resources.queue_url, MessageBody=json.dumps(body))
        [message] = self.sqs.receive_message(
            QueueUrl=self.resources.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=1
        )["Messages"]
        self.sqs.delete_message(QueueUrl=self.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return lambda_sqs_event([message], self.resources.queue_arn)


def invoke(handler: Handler, event: dict[str, Any]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the function's logs and metrics
        response = handler(event, LocalLambdaContext(timeout_seconds=30))
    if response and response.get("batchItemFailures"):
        raise RuntimeError(f"the record was put back: {response}")


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    [record] = event["Records"]
    return {"Records": [{**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "2"}}]}


def scenarios(stack: Stack, handler: Handler, meter: ItemMeter) -> dict[str, dict[str, Any]]:
    """Each scenario's DynamoDB usage for one record."""
    results: dict[str, dict[str, Any]] = {}
    for mode in ("merge", "replace"):
        completion = f"chatcmpl-units{uuid.uuid4().hex[:16]}"
        stack.api.seed_completion(completion, SEEDED)
        body = {"completion_id": completion, "metadata": {"bench_run": "units", "label": mode}, "mode": mode}
        event = stack.event(body)
        meter.take()
        invoke(handler, event)
        results[f"new {mode}"] = meter.take().summary()
        if mode == "merge":
            invoke(handler, redelivered(event))
            results["same message again"] = meter.take().summary()

    for name, rounds in (
        ("merge, 16 keys, full version window", WINDOW_ROUNDS),
        ("merge, 16 keys, full window, busy completion", BUSY_ROUNDS),
    ):
        results[name] = keyed_merge(stack, handler, meter, rounds)
    return results


def keyed_merge(stack: Stack, handler: Handler, meter: ItemMeter, rounds: int) -> dict[str, Any]:
    """A merge of two keys on a completion with 16 keys after `rounds` merges that each set 16 new keys and
    removed the 16 before (so the record tracks as many keys and remembers as many requests as it keeps)."""
    completion = f"chatcmpl-units{uuid.uuid4().hex[:16]}"
    stack.api.seed_completion(completion, {})
    previous: list[str] = []
    for round_number in range(rounds):
        keys = [f"k{round_number:02d}_{index:02d}" for index in range(16)]
        body = {"completion_id": completion, "metadata": dict.fromkeys(keys, "v"), "remove": previous}
        invoke(handler, stack.event(body))
        previous = keys
    meter.take()
    update = {"completion_id": completion, "metadata": {previous[0]: "changed", previous[1]: "changed"}}
    invoke(handler, stack.event(update))
    return meter.take().summary()


def ours(stack: Stack, leases: bool) -> Handler:
    from aws_lambda_powertools import Metrics  # noqa: PLC0415 - after the meter is installed

    from tagger.composition import create_service  # noqa: PLC0415
    from tagger.config import Settings  # noqa: PLC0415

    settings = Settings(
        openai_base_url=stack.api.base_url,
        openai_api_key=API_KEY,
        idempotency_table_name=stack.resources.table_name,
        event_bus_name=stack.resources.event_bus_name,
        completion_leases=leases,
    )
    service = create_service(settings)
    metrics = Metrics(namespace="CompletionTaggerBench")

    def handle(event: dict[str, Any], context: Any) -> Any:
        try:
            return service.handle(event, context, metrics)
        finally:
            metrics.clear_metrics()

    return handle


def baseline(stack: Stack) -> Handler:
    os.environ.update(
        IDEMPOTENCY_TABLE_NAME=stack.resources.table_name,
        OPENAI_BASE_URL=stack.api.base_url,
        OPENAI_API_KEY=API_KEY,
        EVENT_BUS_NAME=stack.resources.event_bus_name,
        POWERTOOLS_METRICS_DISABLED="true",
    )
    from bench.baseline.app import lambda_handler  # noqa: PLC0415 - configured from the environment above

    return lambda_handler


@contextlib.contextmanager
def local_stack() -> Iterator[LocalOpenAIServer]:
    with moto_environment(), LocalOpenAIServer(api_key=API_KEY) as api:
        yield api


def measure() -> dict[str, Any]:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the function's INFO lines are not the table
    results: dict[str, Any] = {}
    with local_stack() as api:
        for name in ("ours", "ours, leases off", "baseline"):
            resources = provision(StackNames.with_prefix(f"units{uuid.uuid4().hex[:6]}-"), StackSettings())
            stack = Stack(api, resources)
            meter = ItemMeter(resources.table_name)
            with _metering(meter):
                handler = baseline(stack) if name == "baseline" else ours(stack, leases=name == "ours")
                results[name] = scenarios(stack, handler, meter)
    return results


@contextlib.contextmanager
def _metering(meter: ItemMeter) -> Iterator[None]:
    import botocore.session  # noqa: PLC0415

    original = botocore.session.Session.create_client
    meter.install()
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


def whole_bill(dynamodb_usd: float) -> dict[str, float] | None:
    """The latest bench run's cost per million for merge, batch 10 @ 500 ms, with this DynamoDB line."""
    latest = RESULTS_DIR / "latest.json"
    if not latest.exists():
        return None
    for row in json.loads(latest.read_text()).get("rows", []):
        if (row["batch_size"], row["latency_ms"], row["mode"], row["max_concurrency"]) == (10, 500, "merge", 10):
            cost = dict(row["ours"]["cost_per_million_usd"])
            cost["total"] = cost["total"] - cost["dynamodb"] + dynamodb_usd
            cost["dynamodb"] = dynamodb_usd
            return cost
    return None


def render(results: dict[str, Any]) -> str:
    names = list(results)
    scenario_names = list(results[names[0]])
    header = "| scenario | " + " | ".join(names) + " |"
    lines = [
        "# DynamoDB per record: requests and billed units",
        "",
        "Each cell: requests (reads + writes) · write units · read units · largest item (bytes) · DynamoDB USD per",
        "million records. Measured by `python -m bench.record_units` (one record at a time, items sized before",
        "and after every call as DynamoDB bills them; see `tools/bench/item_size.py`).",
        "",
        header,
        "|---" * (len(names) + 1) + "|",
    ]
    for scenario in scenario_names:
        cells = []
        for name in names:
            found = results[name].get(scenario)
            if found is None:
                cells.append("–")
                continue
            requests = f"{found['requests']} ({found['reads']} + {found['writes']})"
            units = f"{found['write_units']:g} WRU · {found['read_units']:g} RRU"
            size = f"{found['largest_item_bytes']} B · ${found['dynamodb_usd_per_million']:.3f}"
            cells.append(f"{requests} · {units} · {size}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    for scenario in scenario_names[-2:]:
        parts = results["ours"][scenario]["largest_item_attributes"]
        biggest = ", ".join(f"`{name}` {size:,} B" for name, size in sorted(parts.items(), key=lambda p: -p[1]))
        lines += ["", f"Ours, {scenario}: the largest item by attribute: {biggest}."]
    new_merge = results["ours"]["new merge"]
    lines += [
        "",
        "Targets (ours, a new request): "
        f"reads {new_merge['reads']} (goal {TARGET_READS_PER_NEW_REQUEST}), "
        f"DynamoDB requests {new_merge['requests']} (goal ≤ {TARGET_REQUESTS_PER_NEW_REQUEST}).",
    ]
    bill = whole_bill(float(new_merge["dynamodb_usd_per_million"]))
    if bill is not None:
        lines.append(
            f"Merge, batch 10 @ 500 ms, cost per million with these units and the latest bench run's other lines: "
            f"${bill['total']:.2f} (goal ≤ ${TARGET_MERGE_COST_PER_MILLION:.2f}; DynamoDB ${bill['dynamodb']:.2f}, "
            f"EventBridge ${bill['eventbridge']:.2f}, SQS ${bill['sqs']:.2f}, Lambda "
            f"${bill['lambda_compute'] + bill['lambda_requests']:.2f})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.record_units", description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    arguments = parser.parse_args(argv)
    results = measure()
    table = render(results)
    print(table)
    if not arguments.no_write:
        (RESULTS_DIR / "record-units.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS_DIR / "record-units.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
