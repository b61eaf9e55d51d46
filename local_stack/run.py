"""`python -m local_stack run`: the whole job end to end on the embedded local stack.

Starts moto (AWS) and the local OpenAI server, provisions what template.yaml declares, loads the
handler with the environment Lambda would give it, sends the sample tag requests, and runs the SQS
event source mapping until every message has ended (deleted after its outcome, or dead-lettered),
printing each result event as it arrives and a summary at the end.

With `OPENAI_API_KEY` set and `--completion-ids FILE`, the real API is used instead of the local
server (AWS stays on moto), with one merge of `--tag`s per id.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TextIO

import boto3

from local_stack.aws_endpoint import moto_environment
from local_stack.event_source import BatchReport, SqsEventSourceMapping
from local_stack.function_env import FunctionSettings, HandlerUnavailableError, function_environment, load_handler
from local_stack.function_logs import FunctionLogSink
from local_stack.observer import ResultEvent, ResultObserver
from local_stack.openai_backend import OpenAIBackend, local_backend, real_backend
from local_stack.plan import Plan, RunOptions, UsageError, batching_settings, make_plan
from local_stack.progress import ProgressTicker
from local_stack.provision import EVENT_SOURCE, StackNames, StackResources, StackSettings, provision
from local_stack.queues import messages_on_queue
from local_stack.report import Redactor, RunTally, Summary, event_line, progress_line, summary_lines
from local_stack.send import SendCounts, SendError, send_requests
from local_stack.template_defaults import TemplateDefaults, load_template_defaults

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

EXIT_OK = 0
EXIT_NOT_ENDED = 1  # some message did not end within the timeout
EXIT_SETUP = 2  # bad options, or the stack or the handler could not be set up

PROGRESS_EVERY_SECONDS = 2.0


def run(options: RunOptions, out: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the local stack end to end; returns the process exit code."""
    out = out if out is not None else sys.stdout
    environ = environ if environ is not None else dict(os.environ)
    try:
        plan = make_plan(options, environ)
        defaults = load_template_defaults(options.template)
        batching = batching_settings(options, defaults)
    except (UsageError, OSError) as error:
        print(f"local_stack run: {error}", file=out)
        return EXIT_SETUP
    redact = Redactor([plan.real_api_key])
    with (
        moto_environment() as moto,
        _backend(options, plan) as api,
        FunctionLogSink(options.function_log) as sink,
    ):
        return _Runner(options, plan, defaults, batching, api, sink, out, redact).run(moto.url)


def _backend(options: RunOptions, plan: Plan) -> AbstractContextManager[OpenAIBackend]:
    if plan.real_api_key is not None:
        return real_backend(plan.real_api_key, plan.real_base_url)
    return local_backend(latency=options.latency, error_rate=options.error_rate, seed=options.seed)


class _Runner:
    """One run, from provisioning to the summary, on the calling thread (plus the progress ticker's)."""

    def __init__(
        self,
        options: RunOptions,
        plan: Plan,
        defaults: TemplateDefaults,
        batching: tuple[int, float],
        api: OpenAIBackend,
        sink: FunctionLogSink,
        out: TextIO,
        redact: Redactor,
    ) -> None:
        self.options = options
        self.plan = plan
        self.defaults = defaults
        self.api = api
        self.sink = sink
        self.out = out
        self.redact = redact
        self.batch_size, self.batching_window = batching
        self.tally = RunTally()
        self._print_lock = threading.Lock()
        self._progress: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    def say(self, text: str = "") -> None:
        with self._print_lock:
            print(self.redact(text), file=self.out, flush=True)

    def run(self, aws_url: str) -> int:
        self._print_setup(aws_url)
        resources = provision(
            StackNames(),
            StackSettings(
                max_receive_count=self.defaults.max_receive_count,
                visibility_timeout_seconds=self.options.visibility_timeout_seconds,
                upstream_event_pattern=self.defaults.upstream_event_pattern,
                event_source=EVENT_SOURCE,
            ),
        )
        if self.api.server is not None:
            self.api.seed(self.plan.seed_completions)
        try:
            handler = self.sink.load(lambda: load_handler(function_environment(self._function_settings(resources))))
        except HandlerUnavailableError as error:
            self.say(f"local_stack run: {error}")
            return EXIT_SETUP
        try:
            counts = send_requests(
                self.plan.requests,
                resources.queue_url,
                resources.event_bus_name,
                self.defaults.upstream_detail_type,
                self.say,
            )
        except SendError as error:
            self.say(f"local_stack run: {error}")
            return EXIT_SETUP
        self.say(
            f"Sent {counts.total} tag requests: {counts.via_sqs} to the queue, {counts.via_eventbridge} as "
            f"{self.defaults.upstream_detail_type} events on {resources.event_bus_name}"
        )
        mapping = SqsEventSourceMapping(
            resources.queue_url,
            handler,
            queue_arn=resources.queue_arn,
            batch_size=self.batch_size,
            batching_window_seconds=self.batching_window,
            function_timeout_seconds=self.defaults.function_timeout_seconds,
        )
        return self._process(mapping, resources, counts)

    def _function_settings(self, resources: StackResources) -> FunctionSettings:
        visibility = max(1, self.options.visibility_timeout_seconds)
        return FunctionSettings(
            openai_base_url=self.api.base_url,
            openai_api_key=self.api.api_key,
            idempotency_table_name=resources.table_name,
            event_bus_name=resources.event_bus_name,
            event_source=EVENT_SOURCE,
            max_receive_count=self.defaults.max_receive_count,
            max_concurrency=self.defaults.max_concurrency,
            retry_backoff_base_seconds=1,
            retry_backoff_max_seconds=visibility,
        )

    def _process(self, mapping: SqsEventSourceMapping, resources: StackResources, counts: SendCounts) -> int:
        sqs: SQSClient = boto3.client("sqs")
        observer = ResultObserver(resources.observer_queue_url, sqs)
        arrived = messages_on_queue(sqs, resources.queue_url)
        if arrived < counts.total:
            self.say(
                f"local_stack run: only {arrived} of {counts.total} messages reached the queue "
                f"(does the upstream rule match {self.defaults.upstream_detail_type} events?)"
            )
            return EXIT_NOT_ENDED
        self.say("Result events:")
        started = time.monotonic()
        deadline = started + self.options.timeout_seconds
        reason = ""
        # (ended, total, still queued or in flight, dead-lettered, tagged, failed): replaced, never mutated,
        # so the progress thread can read it while an invocation runs.
        self._progress = (0, counts.total, counts.total, 0, 0, 0)
        with ProgressTicker(self.say, lambda elapsed: progress_line(*self._progress, elapsed), PROGRESS_EVERY_SECONDS):
            while True:
                report = mapping.poll_once()
                if report is not None and report.error:
                    self._whole_batch_failed(report)
                self._show(observer.drain())
                pending = messages_on_queue(sqs, resources.queue_url)
                dead = messages_on_queue(sqs, resources.dead_letter_queue_url)
                ended = len(mapping.deleted_message_ids) + dead
                self._progress = (ended, counts.total, pending, dead, self.tally.tagged, self.tally.failed_total)
                if pending == 0 and ended >= counts.total:
                    break
                if time.monotonic() >= deadline:
                    reason = (
                        f"timed out after {self.options.timeout_seconds:g} s: {counts.total - ended} of "
                        f"{counts.total} messages have not ended ({pending} still queued or in flight)"
                    )
                    break
        self._show(observer.drain())
        self._print_summary(mapping, resources, counts, time.monotonic() - started)
        if reason:
            self.say(f"local_stack run: FAILED, {reason}")
            return EXIT_NOT_ENDED
        self.say(f"local_stack run: OK, all {counts.total} messages ended")
        return EXIT_OK

    def _show(self, events: list[ResultEvent]) -> None:
        for event in events:
            self.tally.add(event)
            self.say(event_line(event, self.redact))

    def _whole_batch_failed(self, report: BatchReport) -> None:
        self.say(f"  ! invocation failed, all {len(report.message_ids)} records put back: {report.error}")
        if report.traceback:
            self.sink.write(self.redact(report.traceback))

    def _print_setup(self, aws_url: str) -> None:
        d = self.defaults
        self.say("completion-tagger local stack")
        self.say(f"  AWS (moto)      {aws_url} via AWS_ENDPOINT_URL")
        openai = self.api.description
        if self.api.server is not None:
            openai += f" (latency {self.options.latency:g} s, error rate {self.options.error_rate:g})"
        self.say(f"  OpenAI          {openai}")
        self.say(
            f"  queue           visibility timeout {self.options.visibility_timeout_seconds} s (local; short so "
            f"retries happen in-run), maxReceiveCount {d.max_receive_count}"
        )
        self.say(
            f"  event source    batch size {self.batch_size}, batching window {self.batching_window:g} s, "
            f"function timeout {d.function_timeout_seconds} s"
        )
        if d.fallbacks:
            reasons = sorted(set(d.fallbacks.values()))
            self.say(f"  template        built-in defaults for {', '.join(sorted(d.fallbacks))}: {'; '.join(reasons)}")
        else:
            self.say(f"  template        parameters from {self.options.template.name}")
        log = str(self.sink.path) if self.sink.path is not None else "inline (terminal)"
        self.say(f"  function logs   {log}")

    def _print_summary(
        self, mapping: SqsEventSourceMapping, resources: StackResources, counts: SendCounts, elapsed: float
    ) -> None:
        sqs: SQSClient = boto3.client("sqs")
        stats = mapping.stats
        summary = Summary(
            sent_via_sqs=counts.via_sqs,
            sent_via_eventbridge=counts.via_eventbridge,
            tally=self.tally,
            duplicates=self.tally.duplicates(mapping.deleted_message_ids),
            dead_lettered=messages_on_queue(sqs, resources.dead_letter_queue_url),
            dead_letter_queue=resources.names.dead_letter_queue,
            api_stats=self.api.api_stats(),
            invocations=stats.invocations,
            records_delivered=stats.records_delivered,
            records_put_back=stats.records_put_back,
            failed_invocations=stats.failed_invocations,
            elapsed_seconds=elapsed,
            function_log=str(self.sink.path) if self.sink.path is not None else "inline",
        )
        self.say()
        for line in summary_lines(summary):
            self.say(line)
