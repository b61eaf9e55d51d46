"""`completion-tagger send`: tag requests from JSON Lines, a file of ids or a selection, to the stack.

Exit codes: 0 every line was sent (on a dry run: every line is valid); 1 some were not, and the
lines are named; 2 usage errors (click's own, and a destination or selection that cannot be used).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import IO

import boto3
import click

from completion_tagger.api import STACK_EVENT_BUS, UsageError, resolve_destination, send_and_maybe_wait
from completion_tagger.destinations import DEFAULT_DETAIL_TYPE, DEFAULT_SOURCE
from completion_tagger.input_text import TextLine, check_encoding
from completion_tagger.interruption import interruptions_on_sigterm
from completion_tagger.requests import Line, TagSpec, completion_ids, id_lines, json_lines
from completion_tagger.selection import Selection, SelectionError, parse_selection, selected_completion_ids
from completion_tagger.send_report import SendInterrupted, SendReport
from completion_tagger.stack import StackError
from completion_tagger.validation import Rejected, validate
from completion_tagger.waiting.options import WaitOptions, wait_options
from tagger.config import DEFAULT_OPENAI_BASE_URL

EXIT_OK = 0
EXIT_NOT_ALL_SENT = 1
EXIT_USAGE = 2


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("requests_file", metavar="[REQUESTS.jsonl | -]", required=False, type=click.File("rb"))
@click.option(
    "--ids", "ids_file", type=click.File("rb"), metavar="FILE", help="Completion ids, one per line (- for stdin)."
)
@click.option(
    "--encoding",
    metavar="NAME",
    help="Of the input file when it has no byte order mark (default utf-8; UTF-8/16/32 marks are detected).",
)
@click.option(
    "--select",
    "select",
    multiple=True,
    metavar="'metadata[KEY]=VALUE'",
    help="Every stored completion the API lists for this filter (repeat to AND). Key from OPENAI_API_KEY.",
)
@click.option("--model", help="With --select: only completions of this model.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="With --ids/--select: a tag to set (repeatable)."
)
@click.option(
    "--remove", "remove", multiple=True, metavar="KEY", help="With --ids/--select: a key to delete (repeatable)."
)
@click.option(
    "--mode", type=click.Choice(["merge", "replace"]), default="merge", show_default=True, help="With --ids/--select."
)
@click.option("--queue-url", metavar="URL", help="Send to this tag-request queue.")
@click.option("--stack-name", metavar="NAME", help="Send to the queue in this stack's outputs (TagRequestQueueUrl).")
@click.option(
    "--event-bus",
    metavar="NAME",
    is_flag=False,
    flag_value=STACK_EVENT_BUS,
    help="Put CompletionTagRequested events on this bus (the stack's upstream rule); "
    "without NAME, with --stack-name: on the stack's bus.",
)
@click.option("--detail-type", default=DEFAULT_DETAIL_TYPE, show_default=True, help="With --event-bus.")
@click.option("--source", default=DEFAULT_SOURCE, show_default=True, help="With --event-bus: the events' source.")
@click.option("--region", help="AWS region (default: your AWS configuration).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="N", help="At most N requests per second.")
@click.option(
    "--request-id-prefix",
    metavar="TEXT",
    help="request_id for lines without one: TEXT-<line> (default send-<time>-<random>).",
)
@click.option("--dry-run", is_flag=True, help="Validate and report; send nothing.")
@wait_options
def send(
    requests_file: IO[bytes] | None,
    ids_file: IO[bytes] | None,
    encoding: str | None,
    select: tuple[str, ...],
    model: str | None,
    tags: tuple[str, ...],
    remove: tuple[str, ...],
    mode: str,
    queue_url: str | None,
    stack_name: str | None,
    event_bus: str | None,
    detail_type: str,
    source: str,
    region: str | None,
    rate: float | None,
    request_id_prefix: str | None,
    dry_run: bool,
    **waiting: object,
) -> None:
    """Validate tag requests with the function's own models and send the valid ones to the stack.

    Requests come from JSON Lines (a file, or - for standard input), from --ids FILE, or from
    --select; with --ids and --select, --tag/--remove/--mode say what every request asks for.
    Invalid lines are named by number and never sent.
    """
    inputs = [given for given in (requests_file is not None, ids_file is not None, bool(select or model)) if given]
    if len(inputs) != 1:
        raise click.UsageError("give one input: REQUESTS.jsonl (or -), --ids FILE, or --select")
    if requests_file is not None and (tags or remove or mode != "merge"):
        raise click.UsageError("--tag, --remove and --mode go with --ids or --select, not with JSON Lines")
    selection: Selection | None = None
    wait = WaitOptions.from_click(waiting, dry_run=dry_run)
    try:
        encoding = check_encoding(encoding) if encoding else None
        spec = None if requests_file is not None else _spec(tags, remove, mode)
        selection = parse_selection(select, model) if select or model else None
        destination = None
        session = boto3.session.Session(region_name=region)
        location = wait.location(session, stack_name) if wait.enabled else None
        if not dry_run:
            destination = resolve_destination(
                session,
                queue_url=queue_url,
                stack_name=stack_name,
                event_bus=event_bus,
                detail_type=detail_type,
                source=source,
            )
        with interruptions_on_sigterm():
            lines, total = _lines(requests_file, ids_file, selection, spec, encoding)
            report = send_and_maybe_wait(
                lines,
                session,
                destination,
                location,
                rate=rate,
                request_id_prefix=request_id_prefix,
                progress=True,
                retry=None,
                timeout_seconds=wait.timeout_seconds,
                results_file=wait.results_file,
                total=total,
            )
    except SendInterrupted as interrupted:
        _print(interrupted.report)
        raise SystemExit(EXIT_NOT_ALL_SENT) from None
    except KeyboardInterrupt:  # while --select was listing completions
        click.echo("completion-tagger send: interrupted before anything was sent", err=True)
        raise SystemExit(EXIT_NOT_ALL_SENT) from None
    except (UsageError, StackError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    except SelectionError as error:
        if selection is None:
            raise click.UsageError(str(error)) from None
        click.echo(f"completion-tagger send: {error}", err=True)
        raise SystemExit(EXIT_NOT_ALL_SENT) from None
    _print(report)
    raise SystemExit(EXIT_OK if report.ok else EXIT_NOT_ALL_SENT)


def _spec(tags: Iterable[str], remove: Iterable[str], mode: str) -> TagSpec:
    """The request every id gets, checked once with the function's model (so a bad --tag is a usage error)."""
    metadata: dict[str, str] = {}
    for pair in tags:
        key, separator, value = pair.partition("=")
        if not separator:
            raise UsageError(f"--tag expects KEY=VALUE, got {pair!r}")
        metadata[key] = value
    spec = TagSpec(metadata, tuple(remove), "replace" if mode == "replace" else "merge")
    checked = validate(Line(0, json.dumps(spec.request_for("id-check"))), "check")
    if isinstance(checked, Rejected):
        raise UsageError(f"--tag/--remove/--mode: {checked.reason}")
    return spec


def _lines(
    requests_file: IO[bytes] | None,
    ids_file: IO[bytes] | None,
    selection: Selection | None,
    spec: TagSpec | None,
    encoding: str | None,
) -> tuple[Iterable[Line], int | None]:
    """The numbered input lines, and how many there are when that is known up front."""
    if requests_file is not None:
        return json_lines(requests_file, encoding), None
    assert spec is not None
    if ids_file is not None:
        return id_lines(completion_ids(ids_file, encoding), spec), None
    assert selection is not None
    ids = selected_completion_ids(
        selection,
        os.environ.get("OPENAI_API_KEY", ""),
        os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
    )
    click.echo(f"selected {len(ids)} stored completion(s)", err=True)
    return id_lines((TextLine(number, value) for number, value in enumerate(ids, start=1)), spec), len(ids)


def _print(report: SendReport) -> None:
    for line in report.problem_lines():
        click.echo(line, err=True)
    for line in report.summary_lines():
        click.echo(line)
    if report.results is not None:
        for line in report.results.problem_lines():
            click.echo(line, err=True)
        for line in report.results.table_lines():
            click.echo(line)
    sys.stdout.flush()
