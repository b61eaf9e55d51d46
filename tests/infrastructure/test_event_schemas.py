"""schemas/ and the template's schema registry: generated from the models, and describing real messages.

Every tag request in events/ (a queue body, or the detail of an upstream event) and every sample result
event validates; the result events `make run` actually delivers are checked in its own test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from pydantic import BaseModel

from event_schemas.__main__ import sync
from event_schemas.catalog import SCHEMAS, SCHEMAS_DIR, EventSchema
from event_schemas.draft4 import DRAFT4, UnsupportedKeywordError, to_draft4
from event_schemas.rendering import template_content
from tagger.models import TAG_FAILED_DETAIL_TYPE, TAGGED_DETAIL_TYPE, TagFailedDetail, TaggedDetail
from tests.infrastructure._template import EVENTS_DIR, TEMPLATE_PATH, load_json

pytestmark = pytest.mark.infrastructure

BY_FILE = {schema.file_name: schema for schema in SCHEMAS}


def validator(file_name: str) -> Draft4Validator:
    return Draft4Validator(load_json(SCHEMAS_DIR / file_name), format_checker=Draft4Validator.FORMAT_CHECKER)


def problems(file_name: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator(file_name).iter_errors(instance)
    ]


def sqs_bodies() -> list[tuple[str, Any]]:
    return [
        (f"{path.name}#{index}", json.loads(record["body"]))
        for path in sorted(EVENTS_DIR.glob("sqs-*.json"))
        for index, record in enumerate(load_json(path)["Records"])
    ]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.file_name)
def test_checked_in_schema_is_the_one_the_models_give(schema: EventSchema) -> None:
    assert schema.path.is_file(), f"schemas/{schema.file_name} is missing: run `make schemas`"
    assert load_json(schema.path) == schema.document(), f"schemas/{schema.file_name} drifted: run `make schemas`"


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.file_name)
def test_template_registers_exactly_the_checked_in_schema(schema: EventSchema, resources: dict[str, Any]) -> None:
    resource = resources[schema.resource]
    assert resource["Type"] == "AWS::EventSchemas::Schema"
    properties = resource["Properties"]
    assert properties["Type"] == "JSONSchemaDraft4"
    assert properties["SchemaName"] == schema.schema_name
    assert properties["RegistryName"] == {"Fn::GetAtt": ["EventSchemaRegistry", "RegistryName"]}
    assert json.loads(properties["Content"]) == load_json(schema.path), "run `make schemas`"
    assert json.loads(template_content(TEMPLATE_PATH.read_text(encoding="utf-8"), schema.resource)) == load_json(
        schema.path
    )


def test_schemas_directory_holds_only_the_published_schemas() -> None:
    assert {path.name for path in SCHEMAS_DIR.iterdir()} == set(BY_FILE)


def test_the_registry_holds_every_schema(resources: dict[str, Any]) -> None:
    registered = {name for name, resource in resources.items() if resource["Type"] == "AWS::EventSchemas::Schema"}
    assert registered == {schema.resource for schema in SCHEMAS}
    assert resources["EventSchemaRegistry"]["Type"] == "AWS::EventSchemas::Registry"


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.file_name)
def test_each_schema_is_valid_draft4(schema: EventSchema) -> None:
    document = load_json(schema.path)
    assert document["$schema"] == DRAFT4
    Draft4Validator.check_schema(document)


def test_result_event_schemas_fix_the_detail_types_the_function_publishes() -> None:
    for file_name, detail_type in [
        ("completion-tagged.json", TAGGED_DETAIL_TYPE),
        ("completion-tag-failed.json", TAG_FAILED_DETAIL_TYPE),
    ]:
        assert load_json(SCHEMAS_DIR / file_name)["properties"]["detail-type"]["enum"] == [detail_type]


# --- samples -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "body"), sqs_bodies(), ids=[name for name, _ in sqs_bodies()])
def test_every_sample_message_body_validates_unless_it_is_the_deliberate_typo(name: str, body: dict[str, Any]) -> None:
    envelope = {"detail-type", "source", "detail"} <= set(body)
    found = problems("completion-tag-requested.json" if envelope else "tag-request.json", body)
    if "metdata" in body:  # sqs-mixed-batch.json's typo: the schema must refuse it as the function does
        assert any("metdata" in problem for problem in found), found
    else:
        assert found == []


@pytest.mark.parametrize(
    ("file_name", "model"),
    [("eventbridge-completion-tagged.json", TaggedDetail), ("eventbridge-completion-tag-failed.json", TagFailedDetail)],
)
def test_sample_result_events_validate_and_are_what_the_function_writes(file_name: str, model: type[BaseModel]) -> None:
    event = load_json(EVENTS_DIR / file_name)
    schema = "completion-tagged.json" if model is TaggedDetail else "completion-tag-failed.json"
    assert problems(schema, event) == []
    assert model.model_validate(event["detail"]).model_dump(mode="json") == event["detail"]


def test_result_events_the_function_writes_validate() -> None:
    """Details as the function serializes them, including the optional `superseded` and a null status."""
    envelope = load_json(EVENTS_DIR / "eventbridge-completion-tagged.json")
    tagged = TaggedDetail(
        completion_id="c", metadata={"k": "v"}, mode="replace", request_id=None, message_id="m", superseded=["x"]
    )
    assert problems("completion-tagged.json", envelope | {"detail": tagged.model_dump(mode="json")}) == []
    plain = tagged.model_copy(update={"superseded": None}).model_dump(mode="json")
    assert "superseded" not in plain
    assert problems("completion-tagged.json", envelope | {"detail": plain}) == []


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"completion_id": "a/b", "metadata": {"k": "v"}}, "completion_id"),
        ({"completion_id": "x" * 129, "metadata": {"k": "v"}}, "completion_id"),
        ({"completion_id": "c", "metadata": {"k": 1}}, "metadata"),
        ({"completion_id": "c", "metadata": {"k": "é" * 513}}, "metadata"),
        ({"completion_id": "c", "metadata": {str(n): "v" for n in range(17)}}, "metadata"),
        ({"completion_id": "c", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"completion_id": "c", "metadata": {"": "v"}}, "metadata"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "mode": "upsert"}, "mode"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "request_id": "r" * 129}, "request_id"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "remove": [""]}, "remove"),
        ({"metadata": {"k": "v"}}, ""),
    ],
)
def test_tag_request_schema_refuses_what_the_function_refuses(request_body: dict[str, Any], field: str) -> None:
    found = problems("tag-request.json", request_body)
    assert found and any(problem.startswith(field) for problem in found), found


def test_tag_request_schema_counts_characters_and_accepts_keys_with_line_breaks() -> None:
    assert problems("tag-request.json", {"completion_id": "c", "metadata": {"k": "é" * 512}}) == []
    assert problems("tag-request.json", {"completion_id": "c", "metadata": {"a\nb": "v"}}) == []


# --- the draft 4 conversion itself ---------------------------------------------------------------


def test_conversion_refuses_keywords_it_cannot_translate() -> None:
    with pytest.raises(UnsupportedKeywordError, match="prefixItems"):
        to_draft4({"type": "array", "prefixItems": [{"type": "string"}]}, "t", "d")
    with pytest.raises(UnsupportedKeywordError, match="propertyNames"):
        to_draft4({"type": "object", "propertyNames": {"pattern": "^a"}}, "t", "d")


def test_conversion_renames_definitions_and_turns_const_into_enum() -> None:
    document = to_draft4(
        {"$defs": {"A": {"const": "x"}}, "properties": {"a": {"$ref": "#/$defs/A"}}, "title": "old"}, "new", "d"
    )
    assert document == {
        "$schema": DRAFT4,
        "title": "new",
        "description": "d",
        "properties": {"a": {"$ref": "#/definitions/A"}},
        "definitions": {"A": {"enum": ["x"]}},
    }


def test_generator_finds_and_repairs_drift_in_files_and_template(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    for schema in SCHEMAS:
        (schemas / schema.file_name).write_text(schema.path.read_text(encoding="utf-8"), encoding="utf-8")
    template = tmp_path / "template.yaml"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    template.write_text(text, encoding="utf-8")
    assert sync(schemas, template, write=False) == []
    (schemas / "tag-request.json").write_text("{}\n", encoding="utf-8")
    stale = json.dumps({"title": "stale"})
    template.write_text(text.replace(template_content(text, "CompletionTaggedSchema"), stale), encoding="utf-8")
    assert sync(schemas, template, write=False) == ["schemas/tag-request.json", "template.yaml"]
    assert sync(schemas, template, write=True) == ["schemas/tag-request.json", "template.yaml"]
    assert sync(schemas, template, write=False) == []
    assert template.read_text(encoding="utf-8") == text
