"""What a local run will do, decided from its options before anything starts."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local_openai.faults import ScriptedFault
from local_stack.event_source import RECEIVE_MAX_MESSAGES
from local_stack.openai_backend import DEFAULT_OPENAI_BASE_URL
from local_stack.samples import TagRequest, generated_requests, load_samples, merge_requests, read_completion_ids
from local_stack.template_defaults import TEMPLATE_PATH, TemplateDefaults

DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_CONCURRENCY = 3
# Each container is an interpreter of its own (~70 MB, ~1 s of CPU to start): more than this on one
# machine measures the machine, not the function.
MAX_LOCAL_CONCURRENCY = 20
DEFAULT_TAGS = {"reviewed": "true"}


class RunOptionsError(ValueError):
    """The options do not make a run (printed as is, exit 2)."""


@dataclass(frozen=True)
class RunOptions:
    """The `run` command's options (see `python -m local_stack run --help`)."""

    batch_size: int | None = None  # None: the template's BatchSize
    batching_window_seconds: float | None = None  # None: the template's MaximumBatchingWindowInSeconds
    visibility_timeout_seconds: int | None = None  # None: the template's function timeout
    concurrency: int = DEFAULT_CONCURRENCY  # Lambda-like containers polling the queue at once
    latency: float = 0.0
    error_rate: float = 0.0
    count: int = 0
    seed: int = 7
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    completion_ids_file: Path | None = None
    tags: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TAGS))
    function_log: Path | None = None  # None: the function's output stays on the terminal
    events_file: Path | None = None  # every result event as delivered, one JSON object per line
    results_file: Path | None = None  # `send --wait`'s outcome of each queue sample (JSON Lines)
    template: Path = TEMPLATE_PATH


@dataclass(frozen=True)
class Plan:
    """What the run will do, decided before anything starts."""

    requests: list[TagRequest]
    seed_completions: dict[str, dict[str, str]]
    real_api_key: str | None = field(repr=False)
    real_base_url: str | None
    # Sent one by one after `requests`, with `faults` scripted first; their completions are verified.
    shared_requests: list[TagRequest] = field(default_factory=list)
    faults: list[ScriptedFault] = field(default_factory=list)


def batching_settings(options: RunOptions, defaults: TemplateDefaults) -> tuple[int, float]:
    """(batch size, batching window): the options, else the template's; checked as Lambda checks them."""
    batch_size = options.batch_size or defaults.batch_size
    window = options.batching_window_seconds
    window = float(defaults.batching_window_seconds if window is None else window)
    if batch_size > RECEIVE_MAX_MESSAGES and window < 1:
        raise RunOptionsError("a batch size above 10 needs a batching window of at least 1 s (as on Lambda)")
    return batch_size, window


def make_plan(options: RunOptions, environ: Mapping[str, str]) -> Plan:
    """Local samples (+ `--count` generated ones), or one merge per id against the real API."""
    if (options.visibility_timeout_seconds or 0) < 0 or options.timeout_seconds <= 0 or options.count < 0:
        raise RunOptionsError("--visibility-timeout, --timeout and --count must not be negative")
    if not 1 <= options.concurrency <= MAX_LOCAL_CONCURRENCY:
        raise RunOptionsError(f"--concurrency must be between 1 and {MAX_LOCAL_CONCURRENCY}, not {options.concurrency}")
    if options.latency < 0 or not 0 <= options.error_rate <= 1:
        raise RunOptionsError("--latency must not be negative and --error-rate must be between 0 and 1")
    if options.batching_window_seconds is not None and not 0 <= options.batching_window_seconds <= 300:
        raise RunOptionsError("--batching-window must be between 0 and 300 seconds")
    if options.completion_ids_file is not None:
        api_key = environ.get("OPENAI_API_KEY")
        if not api_key:
            raise RunOptionsError("--completion-ids talks to the real OpenAI API: set OPENAI_API_KEY first")
        if options.count or options.latency or options.error_rate:
            raise RunOptionsError("--count, --latency and --error-rate apply to the local OpenAI server only")
        ids = read_completion_ids(options.completion_ids_file)
        if not ids:
            raise RunOptionsError(f"{options.completion_ids_file} has no completion ids (one per line)")
        if not options.tags:
            raise RunOptionsError("give at least one --tag KEY=VALUE")
        return Plan(
            requests=merge_requests(ids, options.tags),
            seed_completions={},
            real_api_key=api_key,
            real_base_url=environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
        )
    samples = load_samples()
    # Generated requests leave the shared completions alone: they are sent in bulk, in no defined order.
    pool = sorted(set(samples.completions) - set(samples.shared_completions))
    extra = generated_requests(options.count, pool, random.Random(options.seed))  # noqa: S311 (test data)
    return Plan(
        requests=samples.requests + extra,
        seed_completions=samples.completions,
        real_api_key=None,
        real_base_url=None,
        shared_requests=samples.shared,
        faults=samples.faults,
    )
