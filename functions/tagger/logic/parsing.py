"""Turns an SQS message body into a tag request, or a clear validation error that names the field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic_core
from pydantic import ValidationError

from tagger.errors import InvalidTagRequest
from tagger.models import MAX_REQUEST_ID_LENGTH, EventBridgeEnvelope, TagRequest, format_issued_at

MAX_REPORTED_ERRORS = 5
# An `issued_at` may be at most this far after the message was sent: a producer's clock running ahead must
# not let its requests win over every later one (README, "Tag requests").
MAX_ISSUED_AT_LEAD_MICROS = 5 * 60 * 1_000_000
MAX_ECHOED_ID_LENGTH = MAX_REQUEST_ID_LENGTH
ENVELOPE_FIELDS = ("detail-type", "source", "detail")
ALLOWED_FIELDS = ", ".join(sorted(TagRequest.model_fields))


@dataclass(frozen=True)
class ReadBody:
    """A message body read once: the tag request or why it is not one, and the chain it belongs to."""

    request: TagRequest | InvalidTagRequest
    ordering_key: str


def read_body(body: str, message_id: str, sent_timestamp_ms: int | None = None) -> ReadBody:
    """Read a body once, for both the chain it joins and the request it carries (never raises).

    The ordering key is the completion a message is about, so records of one completion are applied in
    order; a body that names no completion gets its own key (the message id), since it touches none.
    With the message's `sent_timestamp_ms`, an `issued_at` too far after it is a validation error.
    """
    try:
        document = _load_json(body)
    except InvalidTagRequest as invalid:
        return ReadBody(invalid, f"message:{message_id}")
    key = _ordering_key(document, message_id)
    try:
        request = _tag_request(document)
        if sent_timestamp_ms is not None:
            check_issued_at_lead(request, sent_timestamp_ms)
        return ReadBody(request, key)
    except InvalidTagRequest as invalid:
        return ReadBody(invalid, key)


def check_issued_at_lead(request: TagRequest, sent_timestamp_ms: int) -> None:
    """Raise InvalidTagRequest when `issued_at` is more than 5 minutes after the message was sent."""
    issued = request.issued_at_micros()
    if issued is not None and issued > sent_timestamp_ms * 1000 + MAX_ISSUED_AT_LEAD_MICROS:
        raise InvalidTagRequest(
            f"issued_at: {request.issued_at} is more than 5 minutes after the message was sent "
            f"({format_issued_at(sent_timestamp_ms * 1000)}); check the producer's clock",
            request.completion_id,
            request.request_id,
        )


def parse_tag_request(body: str) -> TagRequest:
    """Parse a message body: a tag request, or an EventBridge event whose `detail` is one.

    Raises InvalidTagRequest for anything else, whatever the input (never another exception).
    """
    return _tag_request(_load_json(body))


def _tag_request(document: Any) -> TagRequest:
    if not isinstance(document, dict):
        raise InvalidTagRequest(f"body: must be a JSON object, got {_json_type(document)}")

    is_envelope = all(field in document for field in ENVELOPE_FIELDS)
    request_fields = document.get("detail") if is_envelope else document
    completion_id, request_id = _echoed_ids(request_fields)
    try:
        if is_envelope:
            return EventBridgeEnvelope.model_validate(document).detail
        return TagRequest.model_validate(document)
    except ValidationError as error:
        raise InvalidTagRequest(describe(error), completion_id, request_id) from None


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the field (dotted path) and the rule it broke."""
    problems = []
    for issue in error.errors(include_input=False, include_url=False)[:MAX_REPORTED_ERRORS]:
        field = ".".join(str(part) for part in issue["loc"]) or "body"
        if issue["type"] == "extra_forbidden":
            problems.append(f"{field}: unknown field (allowed: {ALLOWED_FIELDS})")
        elif issue["type"] == "value_error":
            # Our own model rules already name their field.
            problems.append(issue["msg"].removeprefix("Value error, "))
        else:
            problems.append(f"{field}: {issue['msg']}")
    if error.error_count() > MAX_REPORTED_ERRORS:
        problems.append(f"... and {error.error_count() - MAX_REPORTED_ERRORS} more")
    return "; ".join(problems)


def _ordering_key(document: Any, message_id: str) -> str:
    if isinstance(document, dict) and isinstance(document.get("detail"), dict):
        document = document["detail"]
    completion_id = document.get("completion_id") if isinstance(document, dict) else None
    return f"completion:{completion_id}" if isinstance(completion_id, str) else f"message:{message_id}"


def _load_json(body: str) -> Any:
    try:
        data = body.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidTagRequest("body: not valid Unicode text (lone surrogate)") from None
    try:
        return pydantic_core.from_json(data)
    except ValueError as error:
        raise InvalidTagRequest(f"body: not valid JSON ({error})") from None


def _echoed_ids(fields: Any) -> tuple[str | None, str | None]:
    if not isinstance(fields, dict):
        return None, None
    return _short_string(fields.get("completion_id")), _short_string(fields.get("request_id"))


def _short_string(value: Any) -> str | None:
    return value[:MAX_ECHOED_ID_LENGTH] if isinstance(value, str) else None


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
