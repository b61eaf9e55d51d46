"""Pydantic's JSON Schema (draft 2020-12) as JSON Schema draft 4, the JSON Schema draft EventBridge's registry takes.

Only what pydantic emits for the product's models is translated; any other keyword stops the conversion
with its name, so a model change can never publish a schema the registry would read differently.
"""

from __future__ import annotations

from typing import Any

DRAFT4 = "http://json-schema.org/draft-04/schema#"

# Keywords draft 4 knows, by what their value holds.
_SUBSCHEMA = frozenset({"not", "additionalItems"})
_SUBSCHEMA_OR_BOOL = frozenset({"additionalProperties"})
_SUBSCHEMA_LIST = frozenset({"allOf", "anyOf", "oneOf"})
_SUBSCHEMA_MAP = frozenset({"properties", "patternProperties", "definitions"})
_PLAIN = frozenset(
    {
        "$ref",
        "title",
        "default",
        "type",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "required",
    }
)
# Annotations without meaning for validation that draft 4 does not have.
_DROPPED = frozenset({"examples"})


class UnsupportedKeywordError(ValueError):
    """A keyword with no draft 4 translation here."""


def to_draft4(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    """A draft 4 document for `schema` (a pydantic `model_json_schema()`), with its own title and description."""
    converted = _convert(schema)
    converted.pop("title", None)
    converted.pop("description", None)
    definitions = converted.pop("definitions", None)
    document: dict[str, Any] = {"$schema": DRAFT4, "title": title, "description": description, **converted}
    if definitions:
        document["definitions"] = definitions
    return document


def _convert(schema: Any) -> Any:
    if isinstance(schema, bool):
        raise UnsupportedKeywordError("boolean schemas (draft 6 and later)")
    result: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in _DROPPED:
            continue
        if keyword == "$defs":
            result["definitions"] = {name: _convert(item) for name, item in value.items()}
        elif keyword == "$ref":
            result["$ref"] = value.replace("#/$defs/", "#/definitions/")
        elif keyword == "const":
            result["enum"] = [value]
        elif keyword == "propertyNames":
            continue  # folded into patternProperties below
        elif keyword == "items":
            result["items"] = _convert(value)
        elif keyword in _SUBSCHEMA:
            result[keyword] = _convert(value)
        elif keyword in _SUBSCHEMA_OR_BOOL:
            result[keyword] = value if isinstance(value, bool) else _convert(value)
        elif keyword in _SUBSCHEMA_LIST:
            result[keyword] = [_convert(item) for item in value]
        elif keyword in _SUBSCHEMA_MAP:
            result[keyword] = {name: _convert(item) for name, item in value.items()}
        elif keyword == "description":
            result[keyword] = " ".join(value.split())  # docstrings' line breaks and indentation
        elif keyword in _PLAIN:
            result[keyword] = value
        else:
            raise UnsupportedKeywordError(f"{keyword}: no draft 4 translation")
    if "propertyNames" in schema:
        _fold_property_names(schema["propertyNames"], result)
    return result


def _fold_property_names(names: dict[str, Any], result: dict[str, Any]) -> None:
    """Draft 4 has no `propertyNames`: a length rule on keys becomes a pattern every key must match."""
    if set(names) - {"minLength", "maxLength"}:
        raise UnsupportedKeywordError(f"propertyNames: only minLength/maxLength translate, got {sorted(names)}")
    values = result.pop("additionalProperties", {})
    if "patternProperties" in result:
        raise UnsupportedKeywordError("propertyNames together with patternProperties")
    low, high = names.get("minLength", 0), names.get("maxLength", "")
    # [\s\S] rather than ".": a key may contain a line break.
    result["patternProperties"] = {f"^[\\s\\S]{{{low},{high}}}$": values}
    result["additionalProperties"] = False
