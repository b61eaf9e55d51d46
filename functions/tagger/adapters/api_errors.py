"""How OpenAI API outcomes map onto the error codes (README, "Result events", "What happens to each message")."""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping

from tagger.errors import CompletionsApiError
from tagger.models import ErrorCode

MAX_API_MESSAGE_LENGTH = 500
# OpenAI echoes a masked key in 401 messages; nothing key-shaped may leave the function.
_KEY_SHAPED = re.compile(r"sk-[A-Za-z0-9_\-*.]{3,}")
# A 429 that is not a rate limit: the organization's quota, credit or spend limit is used up, so retrying
# soon cannot help (README, "Result events"). OpenAI says so in the error's `code` or `type`, or only in
# its message on older answers.
QUOTA_ERROR_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})
_QUOTA_MESSAGE = re.compile(
    r"exceeded your current quota|billing hard limit|hard limit has been reached|spend(ing)? limit"
    r"|credit balance is too low|run out of credits",
    re.IGNORECASE,
)


def classify_status(status: int) -> tuple[ErrorCode, bool]:
    """Which code an HTTP status gets, and whether retrying can help (README, "What happens to each message")."""
    if status == 404:
        return "not_found", False
    if status in (401, 403):
        # A rotated key must not drop messages: put back, never a permanent failure.
        return "unauthorized", True
    if status == 408:
        return "timeout", True
    if status == 429:
        return "rate_limited", True
    if status == 409 or status >= 500:
        return "upstream_error", True
    if 400 <= status < 500:
        return "invalid_request", False
    return "upstream_error", True


def write_may_have_been_applied(status: int) -> bool:
    """Whether a write answered with this status may still have been applied.

    A 5xx often comes from a proxy or load balancer in front of the API (502, 503, 504) that gave up on
    the API, not from the API itself refusing: the write may have gone through behind it. Any other
    error status is the API's own answer, given before it changed anything.
    """
    return status >= 500


def error_from_response(
    status: int, headers: Mapping[str, str], body: object, secret: str | None = None
) -> CompletionsApiError:
    """Build the classified error for a non-2xx response."""
    code, retryable = classify_status(status)
    if status == 429 and is_quota_exhausted(body):
        code = "quota_exceeded"
    detail = _api_message(body)
    message = f"OpenAI API answered {status}" + (f": {detail}" if detail else "")
    return CompletionsApiError(
        code,
        redact(message, secret)[:MAX_API_MESSAGE_LENGTH],
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(headers),
        request_id=headers.get("x-request-id"),
    )


def is_quota_exhausted(body: object) -> bool:
    """Whether an error body says the quota, credit or spend limit is exhausted (not a rate limit)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    if any(str(error.get(field) or "") in QUOTA_ERROR_CODES for field in ("code", "type")):
        return True
    return bool(_QUOTA_MESSAGE.search(str(error.get("message") or "")))


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, else `Retry-After` in seconds or as an HTTP date."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def redact(text: str, secret: str | None = None) -> str:
    """Remove the API key, and anything shaped like one, from text that may be logged or published.

    The key is removed in every form an error message may quote it in: as given, without surrounding
    whitespace (a stray newline from a file or `echo`), escaped as by `repr` or JSON, and as the repr of
    its bytes (`b'Bearer ...\\n'` in an HTTP library's "illegal header value").
    """
    for form in sorted(_secret_forms(secret), key=len, reverse=True):
        text = text.replace(form, "[redacted]")
    return _KEY_SHAPED.sub("sk-[redacted]", text)


def _secret_forms(secret: str | None) -> set[str]:
    if not secret:
        return set()
    forms = set()
    for value in {secret, secret.strip()}:
        forms |= {value, repr(value)[1:-1], json.dumps(value)[1:-1], repr(value.encode("utf-8"))[2:-1]}
    return {form for form in forms if form}


def _api_message(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            parts = [str(error.get("message") or "").strip()]
            if error.get("code"):
                parts.append(f"(code {error['code']}")
                parts[-1] += f", param {error['param']})" if error.get("param") else ")"
            return " ".join(part for part in parts if part)
    return ""
