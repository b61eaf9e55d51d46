"""`python -m local_stack run`: the whole job end to end on the embedded local stack.

Starts moto (AWS) and the local OpenAI server, provisions what template.yaml declares, starts
`--concurrency` Lambda-like containers (separate processes, each importing the handler with the
environment Lambda would give it and polling the queue with its own SQS event source mapping), sends
the sample tag requests, and waits until every message has ended (deleted after its outcome, or
dead-lettered), printing each result event as it arrives and a summary at the end.

With `OPENAI_API_KEY` set and `--completion-ids FILE`, the real API is used instead of the local
server (AWS stays on moto), with one merge of `--tag`s per id.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

import boto3

from completion_tagger.waiting.send_and_wait import ResultsLocation
from local_stack.aws_endpoint import moto_environment
from local_stack.container import ContainerExited, InvocationEnded, PollerError, Report
from local_stack.fleet import ContainerFleet, ContainerStartError, container_spec
from local_stack.function_env import FunctionSettings
from local_stack.function_logs import FunctionLogSink
from local_stack.observer import ResultEvent, ResultObserver
from local_stack.openai_backend import OpenAIBackend, local_backend, real_backend
from local_stack.plan import Plan, RunOptions, RunOptionsError, batching_settings, make_plan
from local_stack.progress import ProgressTicker
from local_stack.provision import EVENT_SOURCE, StackNames, StackResources, StackSettings, provision
from local_stack.queue_peek import messages_on_queue
from local_stack.run_report import (
    Redactor,
    RunTally,
    Summary,
    container_lines,
    event_line,
    progress_line,
    summary_lines,
)
from local_stack.send import SendCounts, SendError, send_requests
from local_stack.send_order import Verification, verify_send_order
from local_stack.template_defaults import TemplateDefaults, load_template_defaults
from local_stack.waited_send import WaitedSend

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

EXIT_OK = 0
EXIT_NOT_ENDED = 1  # some message did not end within the timeout
EXIT_MISMATCH = 1  # a shared completion differs from its requests applied in send order
EXIT_SETUP = 2  # bad options, or the stack or the handler could not be set up

PROGRESS_EVERY_SECONDS = 2.0
ARRIVAL_WAIT_SECONDS = 5.0  # a message deleted just now may not be reported yet
REPORT_WAIT_SECONDS = 0.25
SHARED_SEND_GAP_SECONDS = 0.005
LOCAL_API_TIMEOUT_SECONDS = 2.0
# The function's backoff across deliveries (ChangeMessageVisibility), short so that retries happen in-run.
LOCAL_RETRY_BACKOFF_MAX_SECONDS = 2  # the run loop looks at the queues after every container report, or this often


def run(options: RunOptions, out: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the local stack end to end; returns the process exit code."""
    out = out if out is not None else sys.stdout
    environ = environ if environ is not None else dict(os.environ)
    try:
        plan = make_plan(options, environ)
        defaults = load_template_defaults(options.template)
        batching = batching_settings(options, defaults)
    except (RunOptionsError, OSError) as error:
        print(f"local_stack run: {error}", file=out)
        return EXIT_SETUP
    redact = Redactor([plan.real_api_key])
    with (
        moto_environment() as moto,
        _backend(options, plan) as api,
        FunctionLogSink(options.function_log) as sink,
        ExitStack() as containers,
    ):
        return _Runner(options, plan, defaults, batching, api, sink, containers, out, redact).run(moto.url)


def local_api_timeout(latency: float) -> float:
    """The function's API timeout against the local server: well above its latency, yet short enough
    that a cut-off write (which the function leaves twice this to settle) comes back within the run."""
    return max(LOCAL_API_TIMEOUT_SECONDS, 3 * latency)


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
        containers: ExitStack,
        out: TextIO,
        redact: Redactor,
    ) -> None:
        self.options = options
        self.plan = plan
        self.defaults = defaults
        self.api = api
        self.sink = sink
        self.containers = containers  # the fleet stops when the run ends, however it ends
        self.out = out
        self.redact = redact
        self.batch_size, self.batching_window = batching
        visibility = options.visibility_timeout_seconds
        self.visibility_timeout = defaults.function_timeout_seconds if visibility is None else visibility
        self.tally = RunTally()
        self._print_lock = threading.Lock()
        self.waited: WaitedSend | None = None  # the queue samples' `send --wait`, once sending starts
        self._progress: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    def say(self, text: str = "") -> None:
        with self._print_lock:
            print(self.redact(text), file=self.out, flush=True)

    def run(self, aws_url: str) -> int:
        self._print_setup(aws_url)
        if self.options.events_file is not None:
            self.options.events_file.write_text("", encoding="utf-8")  # this run's events only
        resources = provision(
            StackNames(),
            StackSettings(
                max_receive_count=self.defaults.max_receive_count,
                visibility_timeout_seconds=self.visibility_timeout,
                upstream_event_pattern=self.defaults.upstream_event_pattern,
                event_source=EVENT_SOURCE,
            ),
        )
        if self.api.server is not None:
            self.api.seed(self.plan.seed_completions)
        spec = container_spec(
            resources,
            self._function_settings(resources),
            batch_size=self.batch_size,
            batching_window_seconds=self.batching_window,
            function_timeout_seconds=self.defaults.function_timeout_seconds,
            function_log=self.sink.path,
        )
        try:
            fleet = self.containers.enter_context(ContainerFleet(spec, self.options.concurrency))
        except ContainerStartError as error:
            if error.traceback:
                self.sink.write(self.redact(error.traceback))
            self.say(f"local_stack run: a container could not start: {error}")
            return EXIT_SETUP
        self._print_containers(fleet)
        self.waited = WaitedSend(
            ResultsLocation(resources.event_bus_name, resources.dead_letter_queue_url, resources.table_name),
            self.options.timeout_seconds,
            self.options.results_file,
        )
        try:
            counts = send_requests(
                self.plan.requests,
                resources.queue_url,
                resources.event_bus_name,
                self.defaults.upstream_detail_type,
                self.say,
                self.waited,
            )
        except SendError as error:
            self.say(f"local_stack run: {error}")
            return EXIT_SETUP
        self.say(
            f"Sent {counts.total} tag requests: {counts.via_sqs} to the queue, {counts.via_eventbridge} as "
            f"{self.defaults.upstream_detail_type} events on {resources.event_bus_name}"
        )
        try:
            counts = self._send_shared(resources, counts)
        except SendError as error:
            self.say(f"local_stack run: {error}")
            return EXIT_SETUP
        return self._process(fleet, resources, counts)

    def _send_shared(self, resources: StackResources, counts: SendCounts) -> SendCounts:
        """The conflicting requests for the shared completions, after scripting the plan's faults: each in a
        call of its own, a few ms apart, so each has its own SentTimestamp and a defined send order."""
        shared = self.plan.shared_requests
        if not shared:
            return counts
        if self.plan.faults:
            self.api.script_faults(self.plan.faults)
        added = 0
        for request in shared:
            time.sleep(SHARED_SEND_GAP_SECONDS)
            added += send_requests(
                [request], resources.queue_url, resources.event_bus_name, self.defaults.upstream_detail_type
            ).via_sqs
        completions = len({request.completion_id for request in shared})
        self.say(
            f"Sent {added} conflicting requests for {completions} shared completions one by one, "
            f"{len(self.plan.faults)} API fault(s) scripted"
        )
        return replace(counts, via_sqs=counts.via_sqs + added)

    def _function_settings(self, resources: StackResources) -> FunctionSettings:
        return FunctionSettings(
            openai_base_url=self.api.base_url,
            openai_api_key=self.api.api_key,
            idempotency_table_name=resources.table_name,
            event_bus_name=resources.event_bus_name,
            event_source=EVENT_SOURCE,
            max_receive_count=self.defaults.max_receive_count,
            max_concurrency=self.defaults.max_concurrency,
            retry_backoff_base_seconds=1,
            retry_backoff_max_seconds=LOCAL_RETRY_BACKOFF_MAX_SECONDS,
            openai_timeout_seconds=None if self.api.server is None else local_api_timeout(self.options.latency),
        )

    def _process(self, fleet: ContainerFleet, resources: StackResources, counts: SendCounts) -> int:
        sqs: SQSClient = boto3.client("sqs")
        observer = ResultObserver(resources.observer_queue_url, sqs)

        def arrived() -> int:
            """The containers are already polling: an arrived message is queued, deleted or dead-lettered."""
            queued = messages_on_queue(sqs, resources.queue_url)
            return queued + messages_on_queue(sqs, resources.dead_letter_queue_url) + len(fleet.deleted_message_ids)

        if not fleet.wait_for(lambda: arrived() >= counts.total, ARRIVAL_WAIT_SECONDS):
            self.say(
                f"local_stack run: only {arrived()} of {counts.total} messages reached the queue "
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
                fleet.wait_for_report(REPORT_WAIT_SECONDS)
                self._follow(fleet.drain())
                self._show(observer.drain())
                pending = messages_on_queue(sqs, resources.queue_url)
                dead = messages_on_queue(sqs, resources.dead_letter_queue_url)
                ended = len(fleet.deleted_message_ids) + dead
                self._progress = (ended, counts.total, pending, dead, self.tally.tagged, self.tally.failed_total)
                if pending == 0 and ended >= counts.total:
                    break
                if time.monotonic() >= deadline:
                    reason = (
                        f"timed out after {self.options.timeout_seconds:g} s: {counts.total - ended} of "
                        f"{counts.total} messages have not ended ({pending} still queued or in flight)"
                    )
                    break
        self._follow(fleet.drain())
        self._show(observer.drain())
        verification = self._verify_shared()
        self._print_summary(fleet, resources, counts, verification, time.monotonic() - started)
        self._print_waited()
        if reason:
            self.say(f"local_stack run: FAILED, {reason}")
            return EXIT_NOT_ENDED
        if verification is not None and verification.differences:
            self.say(
                f"local_stack run: FAILED, all {counts.total} messages ended but {len(verification.differences)} "
                f"of {verification.checked} shared completions differ from their requests applied in send order"
            )
            return EXIT_MISMATCH
        self.say(f"local_stack run: OK, all {counts.total} messages ended")
        return EXIT_OK

    def _print_waited(self) -> None:
        """What `send --wait` reported for the queue samples it sent (its own view of the same run)."""
        if self.waited is None:
            return
        report = self.waited.join(self.options.timeout_seconds)
        self.say()
        if report is None or report.results is None:
            self.say(f"send --wait: no report ({self.waited.error or 'still waiting'})")
            return
        self.say(f"send --wait (the queue samples, as a user sends them; request ids {report.request_id_prefix}-N):")
        for line in report.results.table_lines():
            self.say(f"  {line}" if line else "")
        if self.options.results_file is not None:
            self.say(f"  per line: {self.options.results_file}")

    def _verify_shared(self) -> Verification | None:
        """The shared completions as the local server holds them, against their requests in send order."""
        server = self.api.server
        if server is None or not self.plan.shared_requests:
            return None
        return verify_send_order(self.plan.seed_completions, self.plan.shared_requests, server.metadata_of)

    def _show(self, events: list[ResultEvent]) -> None:
        for event in events:
            self.tally.add(event)
            self.say(event_line(event, self.redact))
        if events and self.options.events_file is not None:
            with self.options.events_file.open("a", encoding="utf-8") as file:
                file.writelines(self.redact(json.dumps(event.envelope)) + "\n" for event in events)

    def _follow(self, reports: list[Report]) -> None:
        """Say what went wrong in the containers: failed invocations, poller errors, a container's death."""
        for report in reports:
            if isinstance(report, InvocationEnded) and report.report.error:
                batch = report.report
                self.say(
                    f"  ! container {report.index}: invocation failed, all {len(batch.message_ids)} records "
                    f"put back: {batch.error}"
                )
                if batch.traceback:
                    self.sink.write(self.redact(batch.traceback))
            elif isinstance(report, PollerError):
                self.say(f"  ! container {report.index}: polling failed, retrying: {report.error}")
            elif isinstance(report, ContainerExited) and report.cause == "died":
                self.say(
                    f"  ! container {report.index} (pid {report.pid}) exited with code {report.exitcode}; "
                    f"{len(report.abandoned)} records it held come back after the visibility timeout"
                )

    def _print_setup(self, aws_url: str) -> None:
        d = self.defaults
        self.say("completion-tagger local stack")
        self.say(f"  AWS (moto)      {aws_url} via AWS_ENDPOINT_URL")
        openai = self.api.description
        if self.api.server is not None:
            openai += f" (latency {self.options.latency:g} s, error rate {self.options.error_rate:g})"
        self.say(f"  OpenAI          {openai}")
        self.say(
            f"  queue           visibility timeout {self.visibility_timeout} s, maxReceiveCount "
            f"{d.max_receive_count}; put-back records retried after 1 s doubling to {LOCAL_RETRY_BACKOFF_MAX_SECONDS} s"
        )
        self.say(
            f"  event source    batch size {self.batch_size}, batching window {self.batching_window:g} s, "
            f"function timeout {d.function_timeout_seconds} s, concurrency {self.options.concurrency}"
        )
        if d.fallbacks:
            reasons = sorted(set(d.fallbacks.values()))
            self.say(f"  template        built-in defaults for {', '.join(sorted(d.fallbacks))}: {'; '.join(reasons)}")
        else:
            self.say(f"  template        parameters from {self.options.template.name}")
        log = str(self.sink.path) if self.sink.path is not None else "inline (terminal)"
        self.say(f"  function logs   {log}")

    def _print_containers(self, fleet: ContainerFleet) -> None:
        for line in container_lines(fleet.stats()):
            self.say(line)

    def _print_summary(
        self,
        fleet: ContainerFleet,
        resources: StackResources,
        counts: SendCounts,
        verification: Verification | None,
        elapsed: float,
    ) -> None:
        sqs: SQSClient = boto3.client("sqs")
        summary = Summary(
            sent_via_sqs=counts.via_sqs,
            sent_via_eventbridge=counts.via_eventbridge,
            tally=self.tally,
            duplicates=self.tally.duplicates(fleet.deleted_message_ids),
            dead_lettered=messages_on_queue(sqs, resources.dead_letter_queue_url),
            dead_letter_queue=resources.names.dead_letter_queue,
            api_stats=self.api.api_stats(),
            containers=fleet.stats(),
            verification=verification,
            deleted_twice=len(fleet.deleted_more_than_once()),
            elapsed_seconds=elapsed,
            function_log=str(self.sink.path) if self.sink.path is not None else "inline",
        )
        self.say()
        for line in summary_lines(summary):
            self.say(line)
