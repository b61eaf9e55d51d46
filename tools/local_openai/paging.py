"""Cursor paging shared by the list endpoints: ``after`` / ``limit`` / ``order`` and the list object."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from local_openai.error_responses import invalid_request

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

Order = Literal["asc", "desc"]

_INTEGER = re.compile(r"-?[0-9]{1,100}")


@dataclass(frozen=True)
class PageParams:
    after: str | None = None
    limit: int = DEFAULT_LIMIT
    order: Order = "asc"


def last_value(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def parse_page_params(query: Mapping[str, Sequence[str]]) -> PageParams:
    """Read the paging parameters of a query string, or raise a 400 ``ErrorResponse``."""
    after = last_value(query, "after") or None
    raw_limit = last_value(query, "limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        # ASCII digits only: int() would also take " 5", "1_0" and digits of other scripts.
        if not _INTEGER.fullmatch(raw_limit):
            raise invalid_request(
                f"Invalid 'limit': expected an integer, but got '{raw_limit[:32]}' instead.",
                param="limit",
                code="invalid_type",
            )
        limit = int(raw_limit)
        if limit < 1:
            raise invalid_request(
                f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got {limit} instead.",
                param="limit",
                code="integer_below_min_value",
            )
        if limit > MAX_LIMIT:
            raise invalid_request(
                f"Invalid 'limit': integer above maximum value. Expected a value <= {MAX_LIMIT}, but got "
                f"{limit} instead.",
                param="limit",
                code="integer_above_max_value",
            )
    order = last_value(query, "order")
    if order is None:
        order = "asc"
    if order not in ("asc", "desc"):
        raise invalid_request(
            f"Invalid value for 'order': expected one of 'asc' or 'desc', but got '{order[:32]}' instead.",
            param="order",
            code="invalid_value",
        )
    return PageParams(after=after, limit=limit, order="asc" if order == "asc" else "desc")


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """The ``{"object": "list", ...}`` envelope; ``first_id``/``last_id`` are null for an empty page."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
