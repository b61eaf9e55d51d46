"""`send`'s options for waiting: `--wait`, `--timeout`, `--results FILE` and, without `--stack-name`, the
stack's names (`--results-bus`, `--dead-letter-queue-url`, `--idempotency-table`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import click

from completion_tagger.waiting.send_and_wait import (
    DEFAULT_TIMEOUT_SECONDS,
    ResultsLocation,
    ResultsLocationError,
    resolve_results_location,
)

F = TypeVar("F", bound=Callable[..., Any])


def wait_options(command: F) -> F:
    """Add the waiting options to a click command (they arrive as keyword arguments; see `WaitOptions`)."""
    options = [
        click.option(
            "--wait", is_flag=True, help="After sending, follow the run's results until every line has ended."
        ),
        click.option(
            "--timeout",
            "wait_timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_TIMEOUT_SECONDS,
            show_default=True,
            metavar="SECONDS",
            help="With --wait: lines without a result by then are reported as no_result.",
        ),
        click.option(
            "--results",
            "results_file",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            metavar="FILE",
            help="With --wait: each line's outcome as JSON Lines.",
        ),
        click.option("--results-bus", metavar="NAME", help="With --wait, no --stack-name: the stack's result bus."),
        click.option("--dead-letter-queue-url", metavar="URL", help="With --wait, no --stack-name: the stack's DLQ."),
        click.option(
            "--idempotency-table", metavar="NAME", help="With --wait, no --stack-name: the stack's idempotency table."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class WaitOptions:
    enabled: bool
    timeout_seconds: float
    results_file: Path | None
    results_bus: str | None
    dead_letter_queue_url: str | None
    idempotency_table: str | None

    @classmethod
    def from_click(cls, values: Mapping[str, object], *, dry_run: bool) -> WaitOptions:
        options = cls(
            enabled=bool(values.get("wait")),
            timeout_seconds=float(values.get("wait_timeout") or DEFAULT_TIMEOUT_SECONDS),  # type: ignore[arg-type]
            results_file=values.get("results_file"),  # type: ignore[arg-type]
            results_bus=values.get("results_bus"),  # type: ignore[arg-type]
            dead_letter_queue_url=values.get("dead_letter_queue_url"),  # type: ignore[arg-type]
            idempotency_table=values.get("idempotency_table"),  # type: ignore[arg-type]
        )
        wait_only = (
            options.results_file,
            options.results_bus,
            options.dead_letter_queue_url,
            options.idempotency_table,
        )
        if any(wait_only) and not options.enabled:
            raise click.UsageError("--results and the stack's names go with --wait")
        if options.enabled and dry_run:
            raise click.UsageError("--wait and --dry-run exclude each other")
        return options

    def location(self, session: boto3.session.Session, stack_name: str | None) -> ResultsLocation:
        try:
            return resolve_results_location(
                session,
                stack_name=stack_name,
                event_bus_name=self.results_bus,
                dead_letter_queue_url=self.dead_letter_queue_url,
                idempotency_table_name=self.idempotency_table,
            )
        except ResultsLocationError as error:
            raise click.UsageError(str(error)) from None
