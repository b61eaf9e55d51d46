"""`python -m bench.send_producer`: `completion-tagger send`'s Python API, 10,000 requests to a moto queue.

Measures what the sender costs: API calls made (at most one per ten requests, plus retries), wall
time, the sender's own CPU time, and its peak memory; and the same for the baseline, a script that
sends one `SendMessage` per request. The sender runs in a process of its own (so its
memory and CPU are its own, not moto's); moto's server runs in this one, where the queue is purged
every 0.2 s: moto's SendMessage reads the queue's attributes, which walks every message on the queue,
so a queue left to grow makes each call slower than the last and would time moto, not the sender.
Every request counts as sent only when SQS listed it as successful. Writes
tools/bench/results/send-latest.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3

from bench.machine import describe
from bench.rss import peak_rss_kb

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_COUNT = 10_000


def requests(count: int) -> Iterator[str]:
    """`count` merges of a typical backfill (one tag, a distinct completion each), generated lazily."""
    for n in range(count):
        yield json.dumps({"completion_id": f"chatcmpl-bench-{n:06d}", "metadata": {"eval-set": "v3"}})


def worker(queue_url: str, count: int, kind: str) -> dict[str, Any]:
    """In the sender's process: send `count` requests the `kind` way; measure calls, time and memory."""
    session = boto3.session.Session()
    calls: list[str] = []
    session.events.register("before-send.sqs.*", lambda **kwargs: calls.append(kwargs["event_name"]))
    rss_before = peak_rss_kb()
    started, cpu_started = time.perf_counter(), time.process_time()
    sent = SENDERS[kind](session, queue_url, count)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "kind": kind,
        "requests": count,
        "sent": sent,
        "http_requests": len(calls),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "requests_per_second": count / seconds,
        "peak_rss_mb_before_send": rss_before / 1024,
        "peak_rss_mb": peak_rss_kb() / 1024,
    }


def send_with_the_sender(session: boto3.session.Session, queue_url: str, count: int) -> int:
    """`send_tag_requests`: validation, batches of ten, retries."""
    from completion_tagger import send_tag_requests  # noqa: PLC0415 - the import is part of what is measured

    return send_tag_requests(requests(count), queue_url=queue_url, session=session).sent


def send_one_by_one(session: boto3.session.Session, queue_url: str, count: int) -> int:
    """The baseline: what a producer's own script does today, one `SendMessage` per request, no validation."""
    sqs = session.client("sqs")
    for body in requests(count):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    return count


SENDERS = {"completion-tagger send": send_with_the_sender, "one SendMessage per request": send_one_by_one}


class Purger(threading.Thread):
    """Empties the queue every `interval` seconds until stopped, standing in for the function."""

    def __init__(self, queue_url: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.queue_url = queue_url
        self.interval = interval
        self.stop = threading.Event()

    def run(self) -> None:
        sqs = boto3.client("sqs")
        while not self.stop.wait(self.interval):
            sqs.purge_queue(QueueUrl=self.queue_url)


def measure(count: int, kind: str) -> dict[str, Any]:
    from local_stack.aws_endpoint import moto_environment  # noqa: PLC0415 - only the parent loads moto

    with moto_environment():
        os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"  # AWS allows one purge a minute
        queue_url = boto3.client("sqs").create_queue(QueueName="bench-send")["QueueUrl"]
        purger = Purger(queue_url)
        purger.start()
        try:
            worker_run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.send_producer",
                    "--worker",
                    queue_url,
                    "--count",
                    str(count),
                    "--kind",
                    kind,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            purger.stop.set()
            purger.join()
    result: dict[str, Any] = json.loads(worker_run.stdout)
    return result


def markdown(results: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    rows = [
        f"| {r['kind']} | {r['requests']:,} | {r['sent']:,} | {r['http_requests']:,} | {r['seconds']:.1f} s | "
        f"{r['requests_per_second']:,.0f} | {r['cpu_seconds']:.1f} s | "
        f"{r['peak_rss_mb']:.0f} MB ({r['peak_rss_mb_before_send']:.0f} MB) |"
        for r in results
    ]
    return "\n".join(
        [
            "# completion-tagger send: requests to a moto queue",
            "",
            f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']:.1f} GB RAM, {machine['os']}, "
            f"Python {machine['python']}. The sender runs in a process of its own, moto's server in another, "
            "over loopback; the queue is purged every 0.2 s (moto's SendMessage slows with the queue's length).",
            "",
            "| how | requests | sent | HTTP requests | wall time | requests / s | sender CPU | "
            "peak RSS (before sending) |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.send_producer", description=__doc__)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"requests to send (default {DEFAULT_COUNT})")
    parser.add_argument("--worker", metavar="QUEUE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=sorted(SENDERS), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        print(json.dumps(worker(arguments.worker, arguments.count, arguments.kind)))
        return 0
    results = [measure(arguments.count, kind) for kind in SENDERS]
    machine = describe()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "send-latest.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    text = markdown(results, machine)
    (RESULTS / "send-latest.md").write_text(text)
    print(text)
    return 0 if all(result["sent"] == result["requests"] for result in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
