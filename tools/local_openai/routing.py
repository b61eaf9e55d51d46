"""Matching /v1 paths to endpoints and to the route templates used as stats keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote


class Endpoint(Enum):
    CREATE = "create"
    LIST = "list"
    RETRIEVE = "retrieve"
    UPDATE = "update"
    DELETE = "delete"
    MESSAGES = "messages"


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint | None  # None: no such route (405 when the path is served, else 404)
    template: str  # e.g. "POST /v1/chat/completions/{id}"
    completion_id: str | None = None
    allowed: tuple[str, ...] = ()  # the methods the path serves; empty for an unknown path


_COLLECTION = re.compile(r"^/v1/chat/completions/?$")
_ITEM = re.compile(r"^/v1/chat/completions/([^/]+)/?$")
_MESSAGES = re.compile(r"^/v1/chat/completions/([^/]+)/messages/?$")

_COLLECTION_METHODS = {"GET": Endpoint.LIST, "POST": Endpoint.CREATE}
_ITEM_METHODS = {"DELETE": Endpoint.DELETE, "GET": Endpoint.RETRIEVE, "POST": Endpoint.UPDATE}
_MESSAGES_METHODS = {"GET": Endpoint.MESSAGES}


def match_v1(method: str, path: str) -> Route:
    """The route of a /v1 request. Unknown paths or methods map to ``endpoint=None``."""
    if _COLLECTION.match(path):
        return _route(_COLLECTION_METHODS, method, "/v1/chat/completions")
    if found := _ITEM.match(path):
        return _route(_ITEM_METHODS, method, "/v1/chat/completions/{id}", unquote(found.group(1)))
    if found := _MESSAGES.match(path):
        return _route(_MESSAGES_METHODS, method, "/v1/chat/completions/{id}/messages", unquote(found.group(1)))
    return Route(None, f"{method} /v1/<unknown>")


def _route(methods: dict[str, Endpoint], method: str, template: str, completion_id: str | None = None) -> Route:
    return Route(methods.get(method), f"{method} {template}", completion_id, tuple(sorted(methods)))
