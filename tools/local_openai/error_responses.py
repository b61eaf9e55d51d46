"""OpenAI-style errors: every failure is answered as ``{"error": {message, type, param, code}}``."""

from __future__ import annotations

from typing import Any

INJECTED = " [local_openai: injected fault]"

# Status -> (message, type, code) used for injected faults and generic failures.  The messages and
# types follow what api.openai.com answers, so clients' error mapping is exercised realistically.
_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to perform this request.", "invalid_request_error", "permission_denied"),
    404: ("Not found.", "invalid_request_error", "not_found"),
    408: ("Request timed out.", "invalid_request_error", "timeout"),
    409: ("The request conflicts with another request.", "invalid_request_error", "conflict"),
    422: ("The request could not be processed.", "invalid_request_error", "unprocessable_entity"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ErrorResponse(Exception):
    """Raised anywhere while handling a request; the app answers it as an error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ErrorResponse:
    """A 400 ``invalid_request_error``."""
    return ErrorResponse(400, message, param=param, code=code)


def not_found(completion_id: str) -> ErrorResponse:
    return ErrorResponse(404, f"No chat completion found with id '{completion_id}'.", code="not_found")


def unknown_url(method: str, path: str) -> ErrorResponse:
    return ErrorResponse(404, f"Invalid URL ({method} {path})", code="unknown_url")


def method_not_allowed(method: str, path: str, allowed: tuple[str, ...]) -> ErrorResponse:
    """A 405 for a served path and a method it does not serve; ``Allow`` lists the ones it does."""
    return ErrorResponse(
        405,
        f"Invalid method for URL ({method} {path}): allowed methods are {', '.join(allowed)}.",
        code="method_not_allowed",
        headers={"Allow": ", ".join(allowed)},
    )


def quota_exhausted() -> ErrorResponse:
    """The 429 OpenAI answers when the organization's quota or prepaid credit is used up."""
    return ErrorResponse(
        429,
        "You exceeded your current quota, please check your plan and billing details." + INJECTED,
        type_="insufficient_quota",
        code="insufficient_quota",
    )


def for_status(status: int, *, completion_id: str | None = None, reason: str | None = None) -> ErrorResponse:
    """The error a real server would plausibly send with ``status`` (used by fault injection)."""
    if reason == "quota":
        return quota_exhausted()
    if status == 404 and completion_id is not None:
        error = not_found(completion_id)
        error.message += INJECTED
        return error
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    message, type_, code = _STATUS_DEFAULTS.get(status, (f"HTTP {status}.", default_type, None))
    return ErrorResponse(status, message + INJECTED, type_=type_, code=code)
