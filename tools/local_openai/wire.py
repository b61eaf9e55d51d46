"""The transport-neutral request and response that the app works on (the HTTP handler adapts them)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from local_openai.error_responses import ErrorResponse, invalid_request


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string, still percent-encoded
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # drop the connection without answering

    def encoded_body(self) -> bytes:
        return json.dumps(self.body).encode("utf-8")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(status, body)


def error_response(error: ErrorResponse) -> Response:
    return Response(error.status, error.body(), dict(error.headers))


def parse_json_object(body: bytes, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 ``ErrorResponse``."""
    if allow_empty and not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(value, dict):
        raise invalid_request("The request body must be a JSON object.", code="invalid_type")
    return value


def parse_json_value(body: bytes) -> Any:
    """Any JSON value (admin endpoints accept a fault or a list of faults)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_request("The request body is not valid JSON.") from None
