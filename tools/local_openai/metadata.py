"""Validation of a ``metadata`` map with the API's limits (16 keys, 64-character keys, 512-character values).

Lengths are counted in Unicode code points (``len`` of a Python ``str``), not bytes.
"""

from __future__ import annotations

from local_openai.error_responses import ErrorResponse, invalid_request

MAX_KEYS = 16
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 512


def validate_metadata(value: object, *, param: str = "metadata") -> dict[str, str]:
    """Return ``value`` as a metadata map, or raise a 400 ``ErrorResponse`` naming the offending field.

    ``None`` means "no metadata" and becomes ``{}``.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    if len(value) > MAX_KEYS:
        raise invalid_request(
            f"Invalid '{param}': too many properties. Expected an object with at most {MAX_KEYS} "
            f"properties, but got an object with {len(value)} properties instead.",
            param=param,
            code="object_above_max_properties",
        )
    result: dict[str, str] = {}
    for key, item in value.items():
        field = f"{param}.{key}"
        if not isinstance(key, str) or not key:
            raise invalid_request(
                f"Invalid '{param}': keys must be non-empty strings.",
                param=param,
                code="string_below_min_length",
            )
        if len(key) > MAX_KEY_LENGTH:
            raise invalid_request(
                f"Invalid '{param}': key too long. Expected keys with maximum length {MAX_KEY_LENGTH}, "
                f"but got a key with length {len(key)} instead.",
                param=field,
                code="string_above_max_length",
            )
        if not isinstance(item, str):
            raise _wrong_type(field, "a string", item)
        if len(item) > MAX_VALUE_LENGTH:
            raise invalid_request(
                f"Invalid '{field}': string too long. Expected a string with maximum length "
                f"{MAX_VALUE_LENGTH}, but got a string with length {len(item)} instead.",
                param=field,
                code="string_above_max_length",
            )
        result[key] = item
    return result


def _wrong_type(name: str, expected: str, value: object) -> ErrorResponse:
    """The API's 400 for a value that is not of the JSON type `name` takes."""
    return invalid_request(
        f"Invalid type for '{name}': expected {expected}, but got {_json_type(value)} instead.",
        param=name,
        code="invalid_type",
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
