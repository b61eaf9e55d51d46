"""Each recipe of docs/contributing.md followed once, without changing the product's outside.

(a) a new request field, (b) a new result event, (c) a new subcommand of `completion-tagger`: each test
adds a throwaway piece the way its recipe says (a subclass of TagRequest, an entry in a patched copy of
RESULT_EVENTS, a click command added to the group) and runs the real code the recipe names on it, so a
recipe step that stops being true fails here.
"""

from __future__ import annotations

import dataclasses
import json
import re
import runpy
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, Literal, cast, get_args

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, TypeAdapter, ValidationError

import completion_tagger.development_tools as development_tools
import tagger.logic.parsing as parsing
import tagger.result_events as result_events
from completion_tagger.cli import cli
from completion_tagger.requests import Line
from completion_tagger.validation import Outgoing, Rejected, validate
from completion_tagger.waiting.completed import idempotency_key
from completion_tagger.waiting.follow import ResultSources, SentLine, follow
from event_schemas.__main__ import sync
from event_schemas.catalog import SCHEMAS, TEMPLATE_PATH, result_event_schema
from local_stack.observer import parse_result_event
from local_stack.run_report import RunTally
from tagger.adapters.event_entries import result_entry
from tagger.adapters.publisher import EventPublisher
from tagger.errors import InvalidTagRequest
from tagger.models import ResultDetail, TagFailedDetail, TaggedDetail, TagRequest
from tagger.result_events import RESULT_EVENTS, ResultEvent, detail_type_of

# --- (a) a new request field -------------------------------------------------------------------------------


class NotedTagRequest(TagRequest):
    """Step 2 with a field that only travels with the request (like `request_id`): left out of the hash (step 3)."""

    note: str | None = None


class PrioritisedTagRequest(TagRequest):
    """Step 2 with a field that changes what is asked for: in the hash, but only when set (step 3)."""

    priority: Literal["low", "high"] | None = None

    def hashed_fields(self) -> dict[str, object]:
        fields = super().hashed_fields()
        if self.priority is not None:
            fields["priority"] = self.priority
        return fields


REQUEST = {"completion_id": "chatcmpl-recipe", "metadata": {"reviewed": "true"}}


ParseWith = Callable[[type[TagRequest]], None]


@pytest.fixture
def parsed_as(monkeypatch: pytest.MonkeyPatch) -> ParseWith:
    """Step 2 in place: the parser (and so the sender, which uses it) reads bodies with the extended model."""

    def use(model: type[TagRequest]) -> None:
        monkeypatch.setattr(parsing, "TagRequest", model)

    return use


def test_a_field_left_out_of_the_hash_never_changes_the_idempotency_key() -> None:
    plain = TagRequest.model_validate(REQUEST)
    noted = NotedTagRequest.model_validate({**REQUEST, "note": "second look"})

    assert noted.idempotency_payload() == plain.idempotency_payload()
    assert idempotency_key(noted) == idempotency_key(plain)  # the key send --wait looks duplicates up by


def test_a_field_hashed_only_when_set_keeps_every_stored_key_and_tells_requests_apart() -> None:
    plain = TagRequest.model_validate(REQUEST)
    unset = PrioritisedTagRequest.model_validate(REQUEST)
    high = PrioritisedTagRequest.model_validate({**REQUEST, "priority": "high"})
    low = PrioritisedTagRequest.model_validate({**REQUEST, "priority": "low"})

    # A request without the field keeps the key it had before the field existed: stored records still match.
    assert unset.request_hash() == plain.request_hash()
    assert idempotency_key(unset) == idempotency_key(plain)
    # Set, it is part of what the request asks for: another value is another request.
    assert len({plain.request_hash(), high.request_hash(), low.request_hash()}) == 3


def test_the_parser_reads_the_new_field_and_refuses_a_wrong_value_naming_it(parsed_as: ParseWith) -> None:
    parsed_as(PrioritisedTagRequest)

    request = parsing.parse_tag_request(json.dumps({**REQUEST, "priority": "high"}))
    assert isinstance(request, PrioritisedTagRequest) and request.priority == "high"
    assert cast(PrioritisedTagRequest, parsing.parse_tag_request(json.dumps(REQUEST))).priority is None

    with pytest.raises(InvalidTagRequest) as refused:
        parsing.parse_tag_request(json.dumps({**REQUEST, "priority": "urgent"}))
    assert refused.value.message.startswith("priority: ")
    assert refused.value.completion_id == REQUEST["completion_id"]


def test_the_sender_sends_the_field_when_set_and_leaves_it_out_when_not(parsed_as: ParseWith) -> None:
    parsed_as(PrioritisedTagRequest)

    with_priority = validate(Line(1, json.dumps({**REQUEST, "priority": "low"})), "recipe")
    without = validate(Line(2, json.dumps(REQUEST)), "recipe")
    wrong = validate(Line(3, json.dumps({**REQUEST, "priority": 1})), "recipe")

    assert isinstance(with_priority, Outgoing) and json.loads(with_priority.body)["priority"] == "low"
    assert isinstance(without, Outgoing) and "priority" not in json.loads(without.body)
    assert isinstance(wrong, Rejected) and wrong.reason.startswith("priority: ")


def test_make_schemas_publishes_the_field_as_optional(tmp_path: Path) -> None:
    tag_request = next(schema for schema in SCHEMAS if schema.model is TagRequest)
    extended = dataclasses.replace(tag_request, model=PrioritisedTagRequest)
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE_PATH.read_text(encoding="utf-8"), encoding="utf-8")

    drifted = sync(tmp_path / "schemas", template, write=True, schemas=[extended])

    assert drifted == ["schemas/tag-request.json", "template.yaml"]
    document = json.loads((tmp_path / "schemas" / "tag-request.json").read_text(encoding="utf-8"))
    assert document["properties"]["priority"]["anyOf"][0]["enum"] == ["low", "high"]
    assert "priority" not in document["required"]
    assert document["additionalProperties"] is False
    assert json.dumps(document, separators=(",", ":")) in template.read_text(encoding="utf-8")
    assert sync(tmp_path / "schemas", template, write=False, schemas=[extended]) == []


# --- (b) a new result event --------------------------------------------------------------------------------


class TagDeferredDetail(BaseModel):
    """Step 1: a detail model whose required `deferred_until` no other result detail has."""

    completion_id: str
    request_id: str | None
    message_id: str
    deferred_until: str


DEFERRED = ResultEvent(
    "CompletionTagDeferred",
    TagDeferredDetail,
    "Published by completion-tagger when a tag request was deferred (a throwaway event of the recipe's test).",
)
DETAIL = TagDeferredDetail(
    completion_id="chatcmpl-recipe", request_id="r-1", message_id="m-1", deferred_until="2026-12-05T08:00:00Z"
)
# Step 2 (the ResultDetail union member) as the type checker would then see the detail.
AS_RESULT = cast(ResultDetail, DETAIL)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 3: one entry in RESULT_EVENTS."""
    monkeypatch.setattr(result_events, "RESULT_EVENTS", (*RESULT_EVENTS, DEFERRED))


class RecordingEventsClient:
    def __init__(self) -> None:
        self.entries: list[Mapping[str, Any]] = []

    def put_events(self, *, Entries: list[Any]) -> Mapping[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i, _ in enumerate(Entries)]}


def test_an_unregistered_detail_cannot_be_published() -> None:
    with pytest.raises(LookupError, match="TagDeferredDetail: no entry in RESULT_EVENTS"):
        result_entry(AS_RESULT, "completion-tagger", "bus")


@pytest.mark.usefixtures("registered")
def test_the_publisher_names_a_registered_event_by_its_entry() -> None:
    client = RecordingEventsClient()
    publisher = EventPublisher(client, "results-bus", "completion-tagger")

    assert detail_type_of(AS_RESULT) == "CompletionTagDeferred"
    assert publisher.publish(AS_RESULT)
    assert client.entries == [
        {
            "Source": "completion-tagger",
            "DetailType": "CompletionTagDeferred",
            "Detail": DETAIL.model_dump_json(),
            "EventBusName": "results-bus",
        }
    ]


def test_a_stored_detail_of_the_new_model_is_told_apart_from_the_others() -> None:
    """Stored details are read back as the one union member they validate as (`detail_from_dict`)."""
    others = get_args(ResultDetail)
    for model in others:
        with pytest.raises(ValidationError):
            model.model_validate(DETAIL.model_dump())
    samples: list[BaseModel] = [
        TaggedDetail(completion_id="c", metadata={"k": "v"}, mode="merge", request_id=None, message_id="m"),
        TagFailedDetail(
            completion_id="c",
            request_id=None,
            message_id="m",
            error={"code": "timeout", "message": "slow", "retryable": True},
        ),
    ]
    extended: TypeAdapter[Any] = TypeAdapter(ResultDetail | TagDeferredDetail)
    for detail in [*samples, DETAIL]:
        assert type(extended.validate_python(detail.model_dump())) is type(detail)


def test_make_schemas_needs_the_template_resource_then_fills_it(tmp_path: Path) -> None:
    schema = result_event_schema(DEFERRED)
    assert (schema.file_name, schema.schema_name, schema.resource) == (
        "completion-tag-deferred.json",
        "completion-tagger@CompletionTagDeferred",
        "CompletionTagDeferredSchema",
    )
    template = tmp_path / "template.yaml"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    template.write_text(text, encoding="utf-8")
    with pytest.raises(LookupError, match=re.escape("no `Content: |` block in resource CompletionTagDeferredSchema")):
        sync(tmp_path / "schemas", template, write=False, schemas=[schema])

    resource = (
        "  CompletionTagDeferredSchema:\n"
        "    Type: AWS::EventSchemas::Schema\n"
        "    Properties:\n"
        "      RegistryName: !GetAtt EventSchemaRegistry.RegistryName\n"
        '      SchemaName: "completion-tagger@CompletionTagDeferred"\n'
        "      Type: JSONSchemaDraft4\n"
        "      Description: Published when a tag request was deferred.\n"
        "      Content: |\n"
        "        {}\n\n"
    )
    template.write_text(text.replace("\nOutputs:\n", f"\n{resource}Outputs:\n", 1), encoding="utf-8")
    assert sync(tmp_path / "schemas", template, write=True, schemas=[schema]) == [
        "schemas/completion-tag-deferred.json",
        "template.yaml",
    ]
    document = json.loads((tmp_path / "schemas" / schema.file_name).read_text(encoding="utf-8"))
    assert document["properties"]["detail-type"]["enum"] == ["CompletionTagDeferred"]
    assert "deferred_until" in document["definitions"]["TagDeferredDetail"]["required"]
    assert sync(tmp_path / "schemas", template, write=False, schemas=[schema]) == []


class NoneCompleted:
    def is_completed(self, request: TagRequest) -> bool:
        return False


class OneEvent:
    def __init__(self, event: dict[str, Any]) -> None:
        self._events = [event]

    def receive(self) -> Iterator[dict[str, Any]]:
        while self._events:
            yield self._events.pop()


def envelope(detail: BaseModel, detail_type: str) -> dict[str, Any]:
    return {"source": "completion-tagger", "detail-type": detail_type, "detail": detail.model_dump(mode="json")}


def test_send_wait_reads_an_event_it_has_no_branch_for_as_a_failure() -> None:
    """Why the recipe's `follow.py` step exists: without its own branch the new event ends its line as failed."""
    line = SentLine(1, TagRequest.model_validate(REQUEST), "r-1", "m-1")
    sources = ResultSources(
        events=OneEvent(envelope(DETAIL, DEFERRED.detail_type)),
        event_source="completion-tagger",
        completed=NoneCompleted(),
        dead_letters=lambda: (set(), set()),
    )

    report = follow([line], [], sources, timeout_seconds=5)

    assert [(result.outcome, result.code) for result in report.lines] == [("failed", "unknown")]


def test_the_local_stack_counts_an_event_it_has_no_branch_for_apart() -> None:
    tally = RunTally()
    tally.add(parse_result_event(json.dumps(envelope(DETAIL, DEFERRED.detail_type))))

    assert (tally.tagged, tally.failed_total, tally.other) == (0, 0, 1)


# --- (c) a new subcommand ----------------------------------------------------------------------------------

EXIT_OK, EXIT_PROBLEMS, EXIT_SETUP = 0, 1, 2


@click.command("recipe-check")
@click.option("--found", type=click.Choice(["nothing", "problems", "unreadable"]), required=True)
def recipe_check(found: str) -> None:
    """Check something of a stack (a throwaway command of the recipe's test).

    Exit 0: fine; 1: problems (printed); 2: could not be checked.
    """
    if found == "unreadable":
        click.echo("could not check: AccessDenied", err=True)
        raise SystemExit(EXIT_SETUP)
    if found == "problems":
        click.echo("one problem", err=True)
        raise SystemExit(EXIT_PROBLEMS)
    click.echo("all good")


@pytest.fixture
def registered_command() -> Iterator[click.Command]:
    """Step 2: `cli.add_command` in cli.py (removed again afterwards)."""
    cli.add_command(recipe_check)
    try:
        yield recipe_check
    finally:
        cli.commands.pop("recipe-check")


def listed_commands(help_text: str) -> list[str]:
    return [
        line.split()[0]
        for line in help_text.split("Commands:")[1].splitlines()
        if line.startswith("  ") and line[2] != " "
    ]


@pytest.mark.usefixtures("registered_command")
def test_a_registered_command_is_listed_and_keeps_the_exit_codes() -> None:
    runner = CliRunner()

    assert "recipe-check" in listed_commands(runner.invoke(cli, ["--help"]).output)
    ok = runner.invoke(cli, ["recipe-check", "--found", "nothing"])
    assert (ok.exit_code, ok.output) == (0, "all good\n")
    assert runner.invoke(cli, ["recipe-check", "--found", "problems"]).exit_code == EXIT_PROBLEMS
    assert runner.invoke(cli, ["recipe-check", "--found", "unreadable"]).exit_code == EXIT_SETUP
    usage = runner.invoke(cli, ["recipe-check"])  # a usage error is click's own exit 2
    assert usage.exit_code == 2 and "Missing option '--found'" in usage.output


@pytest.mark.usefixtures("registered_command")
def test_python_dash_m_runs_the_same_group(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m completion_tagger", "recipe-check", "--found", "problems"])
    monkeypatch.delitem(sys.modules, "completion_tagger.__main__", raising=False)

    with pytest.raises(SystemExit) as exited:
        runpy.run_module("completion_tagger", run_name="__main__")

    assert exited.value.code == EXIT_PROBLEMS
    assert capsys.readouterr().err == "one problem\n"


@pytest.fixture
def lazy_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool-backed command (step 2, lazily): a throwaway tool package and its entry in `lazy_commands`."""
    module = types.ModuleType("recipe_tool")
    module.__spec__ = ModuleSpec("recipe_tool", loader=None)
    module.__dict__["command"] = recipe_check
    monkeypatch.setitem(sys.modules, "recipe_tool", module)
    monkeypatch.setitem(cli.lazy_commands, "recipe-tool", "recipe_tool:command")


@pytest.mark.usefixtures("lazy_tool")
def test_a_lazy_command_is_imported_when_used_and_hidden_where_its_tool_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    assert "recipe-tool" in listed_commands(runner.invoke(cli, ["--help"]).output)
    assert runner.invoke(cli, ["recipe-tool", "--found", "nothing"]).exit_code == EXIT_OK

    monkeypatch.setitem(sys.modules, "recipe_tool", None)  # an install without the tool
    assert "recipe-tool" not in listed_commands(runner.invoke(cli, ["--help"]).output)
    unnamed = runner.invoke(cli, ["recipe-tool", "--found", "nothing"])
    assert isinstance(unnamed.exception, ModuleNotFoundError)  # not in TOOL_PACKAGES: not hidden

    monkeypatch.setattr(development_tools, "TOOL_PACKAGES", development_tools.TOOL_PACKAGES | {"recipe_tool"})
    named = runner.invoke(cli, ["recipe-tool", "--found", "nothing"])
    assert (named.exit_code, named.output) == (1, f"Error: {development_tools.MISSING_TOOLS}\n")
