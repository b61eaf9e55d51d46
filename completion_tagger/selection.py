"""`--select`: the ids of every stored completion that the API's list endpoint returns for a filter.

`GET /chat/completions?metadata[k]=v&model=M&limit=100&after=<last id>` page after page until
`has_more` is false. The whole selection is read before anything is sent, so tags that change what
the filter matches cannot disturb the paging.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from tagger import __version__
from tagger.adapters.api_errors import error_from_response, redact
from tagger.config import DEFAULT_OPENAI_BASE_URL, is_loopback_host
from tagger.errors import CompletionsApiError

PAGE_SIZE = 100  # the list endpoint's largest page
ATTEMPTS = 5
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
USER_AGENT = f"completion-tagger-send/{__version__} (+httpx)"
_FILTER = re.compile(r"^metadata\[(?P<key>[^\]]+)\]=(?P<value>.*)$", re.DOTALL)


class SelectionError(RuntimeError):
    """The selection could not be read (bad filter, refused key, API down). Never contains the key."""


@dataclass(frozen=True)
class Selection:
    """What to list: every `metadata[k]=v` must match, and the model if given."""

    metadata: tuple[tuple[str, str], ...]
    model: str | None = None

    def query(self) -> dict[str, str]:
        params = {f"metadata[{key}]": value for key, value in self.metadata}
        if self.model:
            params["model"] = self.model
        return params


def parse_selection(expressions: Sequence[str], model: str | None = None) -> Selection:
    """`["metadata[k]=v", ...]` → a Selection; a malformed expression is a SelectionError naming it."""
    pairs = []
    for expression in expressions:
        found = _FILTER.match(expression)
        if not found:
            raise SelectionError(f"--select: expected 'metadata[KEY]=VALUE', got {expression!r}")
        pairs.append((found["key"], found["value"]))
    if not pairs and not model:
        raise SelectionError("--select: give at least one 'metadata[KEY]=VALUE' (or --model)")
    return Selection(tuple(pairs), model)


def check_base_url(base_url: str) -> str:
    """The key goes with every request: https only, except to this machine."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and is_loopback_host(host)):
        return base_url.rstrip("/")
    raise SelectionError("OPENAI_BASE_URL: must be an https URL (plain http is allowed only for a loopback host)")


def selected_completion_ids(
    selection: Selection,
    api_key: str,
    base_url: str = DEFAULT_OPENAI_BASE_URL,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Every matching completion id, in the API's order (oldest first)."""
    api_key = api_key.strip()  # a stray newline (from a file or `echo`) is never part of a key
    if not api_key:
        raise SelectionError("--select needs OPENAI_API_KEY (the key is never printed)")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    with httpx.Client(base_url=check_base_url(base_url), headers=headers, timeout=TIMEOUT) as client:
        return list(_pages(client, selection, api_key, sleep))


def _pages(client: httpx.Client, selection: Selection, api_key: str, sleep: Callable[[float], None]) -> Iterator[str]:
    after: str | None = None
    while True:
        params = selection.query() | {"limit": str(PAGE_SIZE)}
        if after is not None:
            params["after"] = after
        page = _get_page(client, params, api_key, sleep)
        ids = [str(item["id"]) for item in page.get("data") or []]
        yield from ids
        if not page.get("has_more") or not ids:
            return
        after = str(page.get("last_id") or ids[-1])


def _get_page(
    client: httpx.Client, params: dict[str, str], api_key: str, sleep: Callable[[float], None]
) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        response = client.get("chat/completions", params=params, headers={"Authorization": f"Bearer {api_key}"})
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.headers, _json_or_text(response), api_key)
        document = response.json()
        if not isinstance(document, dict):
            raise SelectionError("the list endpoint answered something other than a list object")
        return document

    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=_wait,
        retry=retry_if_exception(_retryable),
        reraise=True,
        sleep=sleep,
    )
    try:
        return retrying(get)
    except CompletionsApiError as error:
        raise SelectionError(f"listing completions failed: {error.message}") from None
    except httpx.HTTPError as error:
        raise SelectionError(f"listing completions failed: {redact(str(error), api_key)}") from None


def _retryable(error: BaseException) -> bool:
    if isinstance(error, CompletionsApiError):
        return error.retryable and error.code != "unauthorized"
    # A request httpx refuses to build (an illegal header value: a key with a line break) never gets better.
    return isinstance(error, httpx.TransportError) and not isinstance(error, httpx.LocalProtocolError)


_backoff = wait_exponential_jitter(multiplier=0.5, max=10.0)


def _wait(state: RetryCallState) -> float:
    """Exponential backoff, or longer when the API asks for it (`Retry-After`)."""
    error = state.outcome.exception() if state.outcome is not None else None
    asked = error.retry_after if isinstance(error, CompletionsApiError) and error.retry_after else 0.0
    return max(_backoff(state), asked)


def _json_or_text(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text
