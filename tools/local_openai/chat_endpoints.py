"""The /v1 chat completion endpoints, as plain functions over the store (no HTTP, no faults)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from local_openai.completions import build_completion, deleted_object, new_completion_id, now, stored_messages
from local_openai.error_responses import invalid_request, not_found
from local_openai.metadata import validate_metadata
from local_openai.paging import last_value, list_object, parse_page_params
from local_openai.stats import Stats
from local_openai.store import CompletionStore
from local_openai.wire import Request, Response, json_response, parse_json_object

_METADATA_PARAM = re.compile(r"^metadata\[(.+)\]$")


def create_completion(store: CompletionStore, request: Request) -> Response:
    """``POST /v1/chat/completions``: answer with canned text; keep it only when ``store`` is true."""
    body = parse_json_object(request.body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("You must provide a model parameter.", param="model", code="missing_required_parameter")
    messages = request_messages(body.get("messages"))
    store_flag = body.get("store")
    if store_flag is not None and not isinstance(store_flag, bool):
        raise invalid_request("Invalid type for 'store': expected a boolean.", param="store", code="invalid_type")
    if body.get("stream"):
        raise invalid_request(
            "Streaming is not supported by the local OpenAI server.", param="stream", code="unsupported_value"
        )
    metadata = validate_metadata(body.get("metadata"))
    completion = build_completion(
        completion_id=new_completion_id(), model=model, messages=messages, metadata=metadata, created=now()
    )
    if store_flag:
        completion = store.put(completion, stored_messages(completion["id"], messages))
    return json_response(completion)


def list_completions(store: CompletionStore, request: Request) -> Response:
    """``GET /v1/chat/completions`` with ``model``, ``metadata[k]=v``, ``after``, ``limit``, ``order``."""
    page = parse_page_params(request.query)
    model = last_value(request.query, "model") or None
    data, has_more = store.list(model=model, metadata=metadata_filter(request.query), page=page)
    return json_response(list_object(data, has_more))


def retrieve_completion(store: CompletionStore, completion_id: str) -> Response:
    completion = store.get(completion_id)
    if completion is None:
        raise not_found(completion_id)
    return json_response(completion)


def update_completion(
    store: CompletionStore, stats: Stats, completion_id: str, request: Request, *, merge: bool = False
) -> Response:
    """``POST /v1/chat/completions/{id}``: replace the metadata map (``null`` clears it), or with ``merge`` (the
    ``metadata_update`` knob) set the given keys over the stored ones, keeping the rest."""
    body = parse_json_object(request.body)
    for name in body:
        if name != "metadata":
            raise invalid_request(
                f"Unrecognized request argument supplied: {name}", param=name, code="unknown_parameter"
            )
    if "metadata" not in body:
        raise invalid_request(
            "Missing required parameter: 'metadata'.", param="metadata", code="missing_required_parameter"
        )
    metadata = validate_metadata(body["metadata"])
    if merge:
        completion = store.update_metadata(completion_id, lambda current: validate_metadata({**current, **metadata}))
    else:
        completion = store.replace_metadata(completion_id, metadata)
    if completion is None:
        raise not_found(completion_id)
    stats.record_update(completion_id)
    return json_response(completion)


def delete_completion(store: CompletionStore, completion_id: str) -> Response:
    if not store.delete(completion_id):
        raise not_found(completion_id)
    return json_response(deleted_object(completion_id))


def list_messages(store: CompletionStore, completion_id: str, request: Request) -> Response:
    """``GET /v1/chat/completions/{id}/messages``: the request messages, paged by message id."""
    page = parse_page_params(request.query)
    messages = store.messages(completion_id)
    if messages is None:
        raise not_found(completion_id)
    if page.order == "desc":
        messages.reverse()
    if page.after is not None:
        ids = [message["id"] for message in messages]
        if page.after not in ids:
            raise invalid_request(
                f"Invalid 'after': no message found with id '{page.after}'.", param="after", code="invalid_value"
            )
        messages = messages[ids.index(page.after) + 1 :]
    return json_response(list_object(messages[: page.limit], len(messages) > page.limit))


def metadata_filter(query: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """The ``metadata[key]=value`` query parameters; a completion must match every one of them."""
    wanted: list[tuple[str, str]] = []
    for name, values in query.items():
        found = _METADATA_PARAM.match(name)
        if found:
            wanted.extend((found.group(1), value) for value in values)
    return wanted


def request_messages(value: object) -> list[dict[str, Any]]:
    """Check the ``messages`` of a create request: a non-empty list of objects with a ``role``."""
    if not isinstance(value, list) or not value:
        raise invalid_request(
            "Invalid 'messages': expected a non-empty array of messages.", param="messages", code="invalid_type"
        )
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise invalid_request(
                f"Invalid 'messages[{index}]': expected an object with a string 'role'.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
    return value
