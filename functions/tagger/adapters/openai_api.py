"""The OpenAI stored-completions API on httpx: one keep-alive client per container, bounded retries."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tagger import __version__
from tagger.adapters.api_errors import error_from_response, redact, write_may_have_been_applied
from tagger.errors import CompletionsApiError
from tagger.logic.timing import Deadline, RateLimitGate
from tagger.ports import ApiKeySource, RequestPacer
from tagger.telemetry import logger

USER_AGENT = f"completion-tagger/{__version__} (+httpx)"
CONNECT_TIMEOUT_SECONDS = 3.0
MAX_ATTEMPTS = 3
# Failures that prove the request never reached the API; any other transport failure may come after
# the API received it, and then applied it.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout)
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 4.0


def create_http_client(base_url: str, max_connections: int, read_timeout: float) -> httpx.Client:
    """One pooled client, sized to the records in flight, reused across records and invocations."""
    return httpx.Client(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )


def completion_path(completion_id: str) -> str:
    """The completion's URL path; the id is percent-encoded as exactly one path segment."""
    return f"chat/completions/{quote(completion_id, safe='')}"


@dataclass(frozen=True)
class Pacing:
    """When a request may go: not while the API asks us to back off (`gate`, closed by a 429), and, with a
    fleet-wide cap (README, "Configuration": `API_REQUESTS_PER_SECOND`), not before its turn (`budget`)."""

    gate: RateLimitGate
    budget: RequestPacer | None = None


@dataclass(frozen=True)
class Retries:
    """How often a failing call is tried, and how the wait between tries passes (on a fake clock in tests)."""

    max_attempts: int = MAX_ATTEMPTS
    sleep: Callable[[float], None] = time.sleep


DEFAULT_RETRIES = Retries()


class HttpxCompletionsApi:
    """Retrieve a stored completion and replace its metadata.

    Retryable failures (408/409/429/5xx, timeouts, connection errors) are retried a bounded number of
    times inside the invocation, honouring `Retry-After` / `retry-after-ms`, never past the deadline.
    A 401 re-reads the key once (it may have been rotated). A 429 that says the quota is exhausted
    (`quota_exceeded`) is not retried: only fixing the billing helps. Anything else raises
    `CompletionsApiError` at once.

    A write whose outcome is unknown (timed out or cut off after it was sent, or answered with a 5xx, which
    a proxy in front of the API may send after the API applied it) is never re-sent blindly:
    the API may still apply it, and a re-sent write followed by the next merge would then be undone when
    the first attempt lands. It raises at once, asking for a delay that lets the first attempt settle; the
    redelivery re-reads before it writes.
    """

    def __init__(
        self,
        http: httpx.Client,
        api_key: ApiKeySource,
        pacing: Pacing,
        *,
        retries: Retries = DEFAULT_RETRIES,
        on_call: Callable[[float], None] | None = None,
    ):
        self._http = http
        self._api_key = api_key
        self._gate = pacing.gate
        self._budget = pacing.budget
        self._max_attempts = retries.max_attempts
        self._sleep = retries.sleep
        self._read_timeout = http.timeout.read or CONNECT_TIMEOUT_SECONDS
        self._on_call = on_call

    def retrieve(self, completion_id: str, deadline: Deadline) -> dict[str, Any]:
        return self._call("GET", completion_id, None, deadline)

    def update_metadata(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, Any]:
        return self._call("POST", completion_id, {"metadata": metadata}, deadline)

    def _call(self, method: str, completion_id: str, body: dict[str, Any] | None, deadline: Deadline) -> dict[str, Any]:
        key_refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, completion_id, body, deadline)
            except CompletionsApiError as failure:
                if failure.status == 401 and not key_refreshed:
                    key_refreshed = True
                    self._api_key.refresh()
                    attempt -= 1  # a re-read key gets a fresh try
                    continue
                if failure.code == "rate_limited":
                    self._gate.block_for(failure.retry_after or backoff_delay(attempt))
                wait = failure.retry_after if failure.retry_after is not None else backoff_delay(attempt)
                if (
                    not failure.retryable
                    or failure.code in ("unauthorized", "quota_exceeded")
                    or failure.outcome_unknown
                    or attempt >= self._max_attempts
                    or not deadline.allows(wait)
                ):
                    raise
                logger.info(
                    "retrying API call",
                    extra={"code": failure.code, "status": failure.status, "wait_seconds": round(wait, 3)},
                )
                self._sleep(wait)

    def _send(self, method: str, completion_id: str, body: dict[str, Any] | None, deadline: Deadline) -> dict[str, Any]:
        if self._budget is not None:
            self._budget.wait_for_turn(deadline)
        budget = deadline.remaining()
        if budget <= 0:
            raise CompletionsApiError("timeout", "no time left in the invocation for the API call", retryable=True)
        key = self._api_key.get()
        timeout = httpx.Timeout(min(self._read_timeout, budget), connect=min(CONNECT_TIMEOUT_SECONDS, budget))
        started = time.perf_counter()
        status: int | None = None
        try:
            response = self._http.request(
                method,
                completion_path(completion_id),
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=timeout,
            )
            status = response.status_code
        except httpx.TransportError as error:
            # A read that may have been answered changes nothing; only a write's outcome can be unknown.
            sent = method != "GET" and not isinstance(error, NOT_SENT)
            timed_out = isinstance(error, httpx.TimeoutException)
            raise CompletionsApiError(
                "timeout" if timed_out else "connection_error",
                redact(
                    f"OpenAI API did not answer in time ({type(error).__name__})"
                    if timed_out
                    else f"could not reach the OpenAI API ({type(error).__name__})",
                    key,
                ),
                retryable=True,
                outcome_unknown=sent,
                retry_after=self._settle_seconds() if sent else None,
            ) from None
        finally:
            if self._on_call:
                self._on_call(time.perf_counter() - started)
        if response.is_success:
            try:
                document = response.json()
            except ValueError:
                raise CompletionsApiError(
                    "upstream_error",
                    "OpenAI API answered with a body that is not JSON",
                    retryable=True,
                    status=status,
                ) from None
            if not isinstance(document, dict):
                raise CompletionsApiError(
                    "upstream_error", "OpenAI API answered with an unexpected body", retryable=True
                )
            return document
        try:
            error_body: object = response.json()
        except ValueError:
            error_body = None
        failure = error_from_response(response.status_code, response.headers, error_body, key)
        if method != "GET" and write_may_have_been_applied(response.status_code):
            failure.outcome_unknown = True
            failure.retry_after = max(failure.retry_after or 0.0, self._settle_seconds())
        logger.warning(
            "API call failed",
            extra={
                "method": method,
                "status": failure.status,
                "code": failure.code,
                "x_request_id": failure.request_id,
                "error_message": failure.message,
            },
        )
        raise failure

    def _settle_seconds(self) -> float:
        """How long a write that may still be in flight at the API gets before its record comes back."""
        return 2 * self._read_timeout


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter for retries that came without a Retry-After."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
