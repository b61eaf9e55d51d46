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
    endpoint: Endpoint | None  # None: no such route (404)
    template: str  # e.g. "POST /v1/chat/completions/{id}"
    completion_id: str | None = None


_COLLECTION = re.compile(r"^/v1/chat/completions/?$")
_ITEM = re.compile(r"^/v1/chat/completions/([^/]+)/?$")
_MESSAGES = re.compile(r"^/v1/chat/completions/([^/]+)/messages/?$")

_COLLECTION_METHODS = {"POST": Endpoint.CREATE, "GET": Endpoint.LIST}
_ITEM_METHODS = {"GET": Endpoint.RETRIEVE, "POST": Endpoint.UPDATE, "DELETE": Endpoint.DELETE}


def match_v1(method: str, path: str) -> Route:
    """The route of a /v1 request. Unknown paths or methods map to ``endpoint=None``."""
    if _COLLECTION.match(path):
        return Route(_COLLECTION_METHODS.get(method), f"{method} /v1/chat/completions")
    if found := _ITEM.match(path):
        completion_id = unquote(found.group(1))
        return Route(_ITEM_METHODS.get(method), f"{method} /v1/chat/completions/{{id}}", completion_id)
    if found := _MESSAGES.match(path):
        completion_id = unquote(found.group(1))
        endpoint = Endpoint.MESSAGES if method == "GET" else None
        return Route(endpoint, f"{method} /v1/chat/completions/{{id}}/messages", completion_id)
    return Route(None, f"{method} /v1/<unknown>")
