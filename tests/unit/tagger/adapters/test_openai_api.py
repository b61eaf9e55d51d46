"""HttpxCompletionsApi's retry loop on a real httpx client whose transport is a handler function (no server)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tagger.adapters.openai_api import HttpxCompletionsApi, Pacing, Retries
from tagger.errors import CompletionsApiError
from tagger.logic.timing import Deadline, RateLimitGate
from tests.shared.fakes import FakeClock, FakeKeys, deadline_on

BASE_URL = "https://api.openai.test/v1/"
READ_TIMEOUT = 5.0
KEY = "sk-test-key-0001"
ROTATED_KEY = "sk-test-key-0002"
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "metadata": {"team": "a"}}

Handler = Callable[[httpx.Request], httpx.Response]


class Upstream:
    """Answers requests from a script, one entry per request: a response to return or a transport error to raise."""

    def __init__(self, *script: httpx.Response | Exception | Handler) -> None:
        self._script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self._script[min(len(self.requests), len(self._script)) - 1]  # the last entry repeats
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def authorizations(self) -> list[str]:
        return [request.headers["Authorization"] for request in self.requests]


class Harness:
    """One HttpxCompletionsApi with its fakes: key source, gate and sleep on a fake clock, calls recorded."""

    def __init__(self, upstream: Upstream, *, keys: FakeKeys | None = None, max_attempts: int = 3) -> None:
        self.upstream = upstream
        self.clock = FakeClock()
        self.keys = keys or FakeKeys(KEY)
        self.gate = RateLimitGate(clock=self.clock)
        self.on_call: list[float] = []
        http = httpx.Client(
            base_url=BASE_URL,
            transport=httpx.MockTransport(upstream),
            timeout=httpx.Timeout(READ_TIMEOUT, connect=3.0),
        )
        self.api = HttpxCompletionsApi(
            http,
            self.keys,
            Pacing(self.gate),
            retries=Retries(max_attempts, self.clock.sleep),
            on_call=self.on_call.append,
        )

    def deadline(self, seconds_left: float = 60.0) -> Deadline:
        return deadline_on(self.clock, seconds_left)

    def get(self, completion_id: str = "chatcmpl-1", seconds_left: float = 60.0) -> dict[str, Any]:
        return self.api.retrieve(completion_id, self.deadline(seconds_left))

    def post(self, metadata: dict[str, str] | None = None, seconds_left: float = 60.0) -> dict[str, Any]:
        return self.api.update_metadata("chatcmpl-1", metadata or {"team": "b"}, self.deadline(seconds_left))

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps


def ok(body: object = COMPLETION) -> httpx.Response:
    return httpx.Response(200, json=body)


def status(code: int, headers: dict[str, str] | None = None, body: object = None) -> httpx.Response:
    if body is None:
        body = {"error": {"message": f"status {code}", "type": "error"}}
    return httpx.Response(code, headers=headers or {}, json=body)


def cut(kind: type[httpx.TransportError], message: str = "transport failed") -> Callable[[httpx.Request], Any]:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise kind(message, request=request)

    return raise_it


# Retry-After and backoff


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1250"}, 1.25),
        ({"retry-after-ms": "200", "retry-after": "9"}, 0.2),
    ],
)
def test_retry_after_is_the_wait_before_the_retry(headers: dict[str, str], expected: float) -> None:
    harness = Harness(Upstream(status(503, headers), ok()))
    assert harness.get() == COMPLETION
    assert harness.sleeps == [expected]
    assert len(harness.upstream.requests) == 2


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    harness = Harness(Upstream(status(503, {"retry-after": when}), ok()))
    assert harness.get() == COMPLETION
    [wait] = harness.sleeps
    assert 28.0 <= wait <= 30.0  # the date has whole seconds


def test_without_retry_after_the_wait_is_jittered_exponential_backoff_within_its_bounds() -> None:
    first_waits = set()
    for _ in range(20):
        harness = Harness(Upstream(status(500)), max_attempts=7)
        with pytest.raises(CompletionsApiError):
            harness.get(seconds_left=600)
        waits = harness.sleeps
        assert len(waits) == 6
        # attempt n waits between half and all of min(4 s, 0.25 s * 2^(n-1))
        for attempt, wait in enumerate(waits, start=1):
            ceiling = min(4.0, 0.25 * 2 ** (attempt - 1))
            assert ceiling / 2 <= wait <= ceiling, (attempt, wait)
        first_waits.add(waits[0])
    assert len(first_waits) > 1  # jittered: retries of many records do not line up


def test_retries_stop_at_max_attempts_and_raise_the_last_failure() -> None:
    harness = Harness(Upstream(status(502, {"x-request-id": "req_9"})), max_attempts=3)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert len(harness.upstream.requests) == 3
    assert len(harness.sleeps) == 2
    assert raised.value.code == "upstream_error"
    assert raised.value.status == 502
    assert raised.value.retryable
    assert raised.value.request_id == "req_9"


def test_no_retry_when_the_wait_would_pass_the_deadline() -> None:
    harness = Harness(Upstream(status(503, {"retry-after": "30"}), ok()))
    with pytest.raises(CompletionsApiError) as raised:
        harness.get(seconds_left=10)
    assert len(harness.upstream.requests) == 1
    assert harness.sleeps == []
    assert raised.value.code == "upstream_error"
    assert raised.value.retry_after == 30.0  # the record's put-back can still honour it


def test_retries_continue_while_the_waits_fit_in_the_deadline() -> None:
    harness = Harness(Upstream(status(503, {"retry-after": "4"})), max_attempts=10)
    with pytest.raises(CompletionsApiError):
        harness.get(seconds_left=10)
    # 4 s fits in 10 s, another 4 s fits in the 6 s left, a third would leave nothing
    assert harness.sleeps == [4.0, 4.0]
    assert len(harness.upstream.requests) == 3


def test_no_call_at_all_when_no_time_is_left() -> None:
    harness = Harness(Upstream(ok()))
    with pytest.raises(CompletionsApiError) as raised:
        harness.get(seconds_left=0)
    assert harness.upstream.requests == []
    assert harness.on_call == []
    assert raised.value.code == "timeout"
    assert raised.value.retryable


# Writes whose outcome is unknown


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx.ReadTimeout, "timeout"),
        (httpx.RemoteProtocolError, "connection_error"),
        (httpx.ReadError, "connection_error"),
    ],
)
def test_a_write_that_may_have_been_applied_is_not_resent(error: type[httpx.TransportError], code: str) -> None:
    harness = Harness(Upstream(cut(error), ok()))
    with pytest.raises(CompletionsApiError) as raised:
        harness.post()
    assert len(harness.upstream.requests) == 1
    assert harness.sleeps == []
    assert raised.value.code == code
    assert raised.value.outcome_unknown
    assert raised.value.retryable
    assert raised.value.retry_after == 2 * READ_TIMEOUT  # time for the first attempt to settle


@pytest.mark.parametrize("code", [500, 502, 503, 504, 599])
def test_a_write_answered_with_a_5xx_is_not_resent_and_waits_to_settle(code: int) -> None:
    # A proxy in front of the API answers 502/503/504 when it gives up on the API, which may still apply the write.
    harness = Harness(Upstream(status(code), ok()))
    with pytest.raises(CompletionsApiError) as raised:
        harness.post()
    assert len(harness.upstream.requests) == 1
    assert harness.sleeps == []
    assert raised.value.code == "upstream_error"
    assert raised.value.status == code
    assert raised.value.outcome_unknown
    assert raised.value.retryable
    assert raised.value.retry_after == 2 * READ_TIMEOUT


def test_a_write_5xx_with_a_longer_retry_after_keeps_the_longer_wait() -> None:
    harness = Harness(Upstream(status(503, {"retry-after": "60"})))
    with pytest.raises(CompletionsApiError) as raised:
        harness.post()
    assert raised.value.outcome_unknown
    assert raised.value.retry_after == 60.0


@pytest.mark.parametrize("code", [408, 409, 429])
def test_a_write_refused_by_the_api_itself_is_retried(code: int) -> None:
    written = {**COMPLETION, "metadata": {"team": "b"}}
    harness = Harness(Upstream(status(code, {"retry-after": "1"}), ok(written)))
    assert harness.post({"team": "b"}) == written
    assert len(harness.upstream.requests) == 2


def test_a_read_answered_with_a_5xx_is_retried_and_not_reported_as_outcome_unknown() -> None:
    harness = Harness(Upstream(status(502)))
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert len(harness.upstream.requests) == 3
    assert not raised.value.outcome_unknown


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_the_same_failure_on_a_read_is_retried(error: type[httpx.TransportError]) -> None:
    harness = Harness(Upstream(cut(error), ok()))
    assert harness.get() == COMPLETION
    assert len(harness.upstream.requests) == 2
    assert len(harness.sleeps) == 1


def test_a_read_that_keeps_failing_is_not_reported_as_outcome_unknown() -> None:
    harness = Harness(Upstream(cut(httpx.ReadTimeout)))
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert len(harness.upstream.requests) == 3
    assert raised.value.code == "timeout"
    assert not raised.value.outcome_unknown


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout])
def test_a_write_that_never_left_is_retried(error: type[httpx.TransportError]) -> None:
    written = {**COMPLETION, "metadata": {"team": "b"}}
    harness = Harness(Upstream(cut(error), ok(written)))
    assert harness.post({"team": "b"}) == written
    assert len(harness.upstream.requests) == 2
    assert [request.method for request in harness.upstream.requests] == ["POST", "POST"]
    assert json.loads(harness.upstream.requests[1].content) == {"metadata": {"team": "b"}}


# Keys


def test_a_401_rereads_the_key_once_and_retries_with_the_new_key() -> None:
    harness = Harness(Upstream(status(401), ok()), keys=FakeKeys(KEY, ROTATED_KEY))
    assert harness.get() == COMPLETION
    assert harness.upstream.authorizations == [f"Bearer {KEY}", f"Bearer {ROTATED_KEY}"]
    assert harness.keys.refreshes == 1
    assert harness.sleeps == []  # a rotated key needs no backoff


def test_a_second_401_raises_unauthorized() -> None:
    harness = Harness(Upstream(status(401)), keys=FakeKeys(KEY, ROTATED_KEY), max_attempts=5)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert harness.upstream.authorizations == [f"Bearer {KEY}", f"Bearer {ROTATED_KEY}"]
    assert harness.keys.refreshes == 1
    assert raised.value.code == "unauthorized"
    assert raised.value.status == 401


def test_the_key_refresh_does_not_use_up_an_attempt() -> None:
    harness = Harness(Upstream(status(401), status(500), ok()), keys=FakeKeys(KEY, ROTATED_KEY), max_attempts=2)
    assert harness.get() == COMPLETION
    assert len(harness.upstream.requests) == 3


@pytest.mark.parametrize("echoed_status", [401, 400, 500])
def test_the_key_never_appears_in_an_error_message(echoed_status: int) -> None:
    secret = "plain-secret-value-77"  # not key-shaped: only the exact value can be redacted

    def echo_key(request: httpx.Request) -> httpx.Response:
        sent = request.headers["Authorization"].removeprefix("Bearer ")
        return status(echoed_status, body={"error": {"message": f"Incorrect API key provided: {sent}"}})

    harness = Harness(Upstream(echo_key), keys=FakeKeys(secret), max_attempts=1)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert "Incorrect API key provided" in raised.value.message
    assert secret not in raised.value.message
    assert secret not in str(raised.value)
    assert secret not in raised.value.info().model_dump_json()


def test_the_key_never_appears_in_a_transport_error_message() -> None:
    harness = Harness(Upstream(cut(httpx.ConnectError, f"refused for Bearer {KEY}")), max_attempts=1)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert raised.value.code == "connection_error"
    assert KEY not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


# Rate limits and other statuses


def test_a_429_blocks_the_gate_for_its_retry_after() -> None:
    harness = Harness(Upstream(status(429, {"retry-after": "7"})), max_attempts=1)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert raised.value.code == "rate_limited"
    assert harness.gate.wait_left() == 7.0


def test_a_429_without_retry_after_blocks_the_gate_for_a_first_backoff() -> None:
    harness = Harness(Upstream(status(429)), max_attempts=1)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert raised.value.retry_after is None
    assert 0.125 <= harness.gate.wait_left() <= 0.25


def test_a_quota_429_is_raised_at_once_and_leaves_the_gate_open() -> None:
    quota = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}
    harness = Harness(Upstream(status(429, {"retry-after": "1"}, body=quota), ok()), max_attempts=5)
    with pytest.raises(CompletionsApiError) as raised:
        harness.post()
    assert (raised.value.code, raised.value.retryable) == ("quota_exceeded", True)
    assert len(harness.upstream.requests) == 1 and harness.sleeps == []
    # Rate-limited records may still go (the quota is not the rate); each learns it with one request.
    assert harness.gate.wait_left() == 0.0


def test_other_retryable_statuses_leave_the_gate_open() -> None:
    harness = Harness(Upstream(status(503, {"retry-after": "7"})), max_attempts=1)
    with pytest.raises(CompletionsApiError):
        harness.get()
    assert harness.gate.wait_left() == 0.0


@pytest.mark.parametrize(
    ("code", "error_code"), [(404, "not_found"), (400, "invalid_request"), (422, "invalid_request")]
)
def test_a_client_error_raises_at_once_without_retry(code: int, error_code: str) -> None:
    harness = Harness(Upstream(status(code), ok()), max_attempts=5)
    with pytest.raises(CompletionsApiError) as raised:
        harness.post()
    assert len(harness.upstream.requests) == 1
    assert harness.sleeps == []
    assert raised.value.code == error_code
    assert raised.value.status == code
    assert not raised.value.retryable


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json=[COMPLETION]),
        httpx.Response(200, json="chat.completion"),
    ],
    ids=["not-json", "json-array", "json-string"],
)
def test_a_success_without_a_json_object_is_an_upstream_error(response: httpx.Response) -> None:
    harness = Harness(Upstream(response), max_attempts=1)
    with pytest.raises(CompletionsApiError) as raised:
        harness.get()
    assert raised.value.code == "upstream_error"
    assert raised.value.retryable


# Requests


def test_the_completion_id_is_one_percent_encoded_path_segment() -> None:
    harness = Harness(Upstream(ok()))
    harness.get("a/../b?x=1#frag %")
    [request] = harness.upstream.requests
    assert request.url.raw_path == b"/v1/chat/completions/a%2F..%2Fb%3Fx%3D1%23frag%20%25"
    assert request.url.query == b""


def test_requests_carry_method_path_key_and_body() -> None:
    harness = Harness(Upstream(ok(), ok()))
    harness.get()
    harness.post({"team": "b", "env": "prod"})
    get, post = harness.upstream.requests
    assert (get.method, get.url.path, get.content) == ("GET", "/v1/chat/completions/chatcmpl-1", b"")
    assert (post.method, post.url.path) == ("POST", "/v1/chat/completions/chatcmpl-1")
    assert json.loads(post.content) == {"metadata": {"team": "b", "env": "prod"}}
    assert harness.upstream.authorizations == [f"Bearer {KEY}"] * 2


def test_on_call_is_called_once_per_http_attempt_with_its_duration() -> None:
    harness = Harness(Upstream(status(500), cut(httpx.ConnectError), ok()))
    harness.get()
    assert len(harness.on_call) == 3  # the 500, the connection error and the answer
    assert all(seconds >= 0 for seconds in harness.on_call)
