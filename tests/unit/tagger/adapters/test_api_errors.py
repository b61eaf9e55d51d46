"""HTTP outcomes classified exactly as the README's outcome table says; Retry-After parsing; key redaction."""

import email.utils

import pytest

from tagger.adapters.api_errors import classify_status, error_from_response, redact, retry_after_seconds


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, "not_found", False),
        (400, "invalid_request", False),
        (422, "invalid_request", False),
        (401, "unauthorized", True),
        (403, "unauthorized", True),
        (408, "timeout", True),
        (409, "upstream_error", True),
        (429, "rate_limited", True),
        (500, "upstream_error", True),
        (502, "upstream_error", True),
        (503, "upstream_error", True),
        (413, "invalid_request", False),
    ],
)
def test_status_classification(status: int, code: str, retryable: bool) -> None:
    assert classify_status(status) == (code, retryable)


def test_error_carries_api_message_code_param_and_request_id() -> None:
    body = {
        "error": {
            "message": "too many",
            "type": "invalid_request_error",
            "param": "metadata",
            "code": "object_above_max_properties",
        }
    }
    error = error_from_response(400, {"x-request-id": "req_1"}, body)
    assert error.code == "invalid_request"
    assert "too many" in error.message
    assert "object_above_max_properties" in error.message
    assert "param metadata" in error.message
    assert error.request_id == "req_1"
    assert error.info().model_dump() == {
        "code": "invalid_request",
        "message": error.message,
        "retryable": False,
        "status": 400,
    }


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    when = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_after_seconds({"retry-after": when}, now=1_000_000) == pytest.approx(10.0)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_key_never_survives_in_messages() -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-proj-abc***xyz. See docs.", "code": "invalid_api_key"}}
    error = error_from_response(401, {}, body, secret="sk-live-secret-1234")
    assert "sk-proj" not in error.message
    assert "abc***xyz" not in error.message
    assert redact("token sk-live-secret-1234 used", "sk-live-secret-1234") == "token [redacted] used"
    assert "secret-value" not in redact("key=secret-value", "secret-value")


@pytest.mark.parametrize(
    "quoted",
    [
        "0123456789abcdef\n",  # as given
        "0123456789abcdef",  # stripped
        "'0123456789abcdef\\n'",  # repr-escaped
        "b'Bearer 0123456789abcdef\\n'",  # the bytes repr an HTTP library's header error shows
        '"0123456789abcdef\\n"',  # JSON-escaped
        "b'0123456789abcdef\\xc3\\xa9'",
    ],
)
def test_every_form_of_the_key_is_redacted(quoted: str) -> None:
    secret = "0123456789abcdefé" if "xc3" in quoted else "0123456789abcdef\n"

    redacted = redact(f"Illegal header value {quoted}", secret)

    assert "0123456789abcdef" not in redacted
    assert "[redacted]" in redacted


# Quota exhausted: a 429 that retrying soon cannot help (README, "Result events").

QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details."


@pytest.mark.parametrize(
    "error",
    [
        {"message": QUOTA_MESSAGE, "type": "insufficient_quota", "param": None, "code": "insufficient_quota"},
        {"message": QUOTA_MESSAGE, "type": "insufficient_quota", "param": None, "code": None},
        {"message": QUOTA_MESSAGE, "type": "requests", "param": None, "code": None},
        {"message": "Billing hard limit has been reached", "type": "invalid_request_error", "code": None},
        {"message": "over limit", "type": "invalid_request_error", "code": "billing_hard_limit_reached"},
    ],
)
def test_a_429_saying_the_quota_is_exhausted_is_quota_exceeded(error: dict[str, object]) -> None:
    failure = error_from_response(429, {"retry-after": "20"}, {"error": error})
    assert (failure.code, failure.retryable, failure.status) == ("quota_exceeded", True, 429)


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}},
        {"error": {"message": "Rate limit reached for tokens", "type": "tokens", "code": "rate_limit_exceeded"}},
        None,
        "not json",
    ],
)
def test_a_429_about_the_rate_is_rate_limited(body: object) -> None:
    assert error_from_response(429, {}, body).code == "rate_limited"


def test_only_a_429_is_read_for_quota() -> None:
    body = {"error": {"message": QUOTA_MESSAGE, "type": "insufficient_quota", "code": "insufficient_quota"}}
    assert error_from_response(403, {}, body).code == "unauthorized"
