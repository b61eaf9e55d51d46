"""The local OpenAI server over raw HTTP (httpx on loopback): wire behaviour, faults, knobs, admin."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_openai import LocalOpenAIServer
from tests.integration.harness import API_KEY

pytestmark = pytest.mark.integration

KEY = API_KEY
AUTH = {"Authorization": f"Bearer {KEY}"}
ROUTE_UPDATE = "POST /v1/chat/completions/{id}"


@pytest.fixture
def server(api: LocalOpenAIServer) -> LocalOpenAIServer:
    """The session's local OpenAI server (conftest), reset for this test."""
    return api


@pytest.fixture
def http(server: LocalOpenAIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5.0) as client:
        yield client


@pytest.fixture
def admin(server: LocalOpenAIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.admin_url, timeout=5.0) as client:
        yield client


def update(http: httpx.Client, completion_id: str, metadata: Any, **kwargs: Any) -> httpx.Response:
    return http.post(f"/chat/completions/{completion_id}", json={"metadata": metadata}, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


# ----- wire behaviour -----


def test_keep_alive_reuses_one_connection(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.seed_completion("chatcmpl-keep")
    local_addresses = set()
    for _ in range(5):
        response = http.get("/chat/completions/chatcmpl-keep")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(response.content))
        assert response.headers.get("connection", "").lower() != "close"
        local_addresses.add(response.extensions["network_stream"].get_extra_info("client_addr"))
    assert len(local_addresses) == 1


def test_every_response_has_a_request_id(server: LocalOpenAIServer, http: httpx.Client) -> None:
    responses = [http.get("/chat/completions"), http.get("/chat/completions/nope"), http.get("/nowhere")]
    ids = [response.headers["x-request-id"] for response in responses]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", request_id) for request_id in ids)
    assert len(set(ids)) == 3


def test_not_found_and_unknown_route_share_the_error_shape(http: httpx.Client) -> None:
    missing = http.get("/chat/completions/chatcmpl-nope")
    assert missing.status_code == 404
    assert error_of(missing) == {
        "message": "No chat completion found with id 'chatcmpl-nope'.",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }
    unknown = http.get("/models")
    assert unknown.status_code == 404
    assert error_of(unknown)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/chat/completions", "GET, POST"),
        ("/chat/completions/chatcmpl-x", "DELETE, GET, POST"),
        ("/chat/completions/chatcmpl-x/messages", "GET"),
    ],
)
def test_a_method_a_served_path_does_not_serve_is_405_with_allow(http: httpx.Client, path: str, allow: str) -> None:
    for method in ("PUT", "PATCH", "OPTIONS", "TRACE", "QUERY", "DELETE"):
        if method in allow:
            continue
        response = http.request(method, path)
        assert response.status_code == 405, method
        assert response.headers["allow"] == allow
        assert error_of(response)["code"] == "method_not_allowed"
    head = http.head(path)
    assert (head.status_code, head.headers["allow"], head.content) == (405, allow, b"")
    assert http.request("BREW", path).status_code == 501  # not a method this server knows at all


def test_auth(server: LocalOpenAIServer) -> None:
    with httpx.Client(base_url=server.base_url) as anonymous:
        missing = anonymous.get("/chat/completions")
        wrong = anonymous.get("/chat/completions", headers={"Authorization": "Bearer sk-wrong-secret"})
        right = anonymous.get("/chat/completions", headers=AUTH)
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert error_of(wrong)["code"] == "invalid_api_key"
    assert "sk-wrong-secret" not in wrong.text
    assert right.status_code == 200


def test_without_a_configured_key_any_bearer_token_works() -> None:
    with LocalOpenAIServer() as server, httpx.Client(base_url=server.base_url) as client:
        assert client.get("/chat/completions", headers={"Authorization": "Bearer anything"}).status_code == 200
        assert client.get("/chat/completions").status_code == 401


def test_update_body_errors(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.seed_completion("chatcmpl-body", {"a": "1"})
    not_json = http.post(
        "/chat/completions/chatcmpl-body", content=b"{nope", headers={"content-type": "application/json"}
    )
    missing = http.post("/chat/completions/chatcmpl-body", json={})
    extra = http.post("/chat/completions/chatcmpl-body", json={"metadata": {}, "metdata": {}})
    assert [r.status_code for r in (not_json, missing, extra)] == [400, 400, 400]
    assert error_of(missing)["param"] == "metadata"
    assert error_of(extra)["param"] == "metdata"
    assert server.metadata_of("chatcmpl-body") == {"a": "1"}
    assert server.stats()["updates_by_completion"] == {}


def test_value_length_counts_unicode_characters(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.seed_completion("chatcmpl-unicode")
    assert update(http, "chatcmpl-unicode", {"k": "é" * 512}).status_code == 200  # 1024 bytes in UTF-8
    assert update(http, "chatcmpl-unicode", {"k": "😀" * 512}).status_code == 200
    rejected = update(http, "chatcmpl-unicode", {"k": "é" * 513})
    assert rejected.status_code == 400
    assert error_of(rejected)["code"] == "string_above_max_length"
    assert error_of(rejected)["param"] == "metadata.k"
    assert server.metadata_of("chatcmpl-unicode") == {"k": "😀" * 512}


def test_list_paging_parameters_are_validated(server: LocalOpenAIServer, http: httpx.Client) -> None:
    for index in range(3):
        server.seed_completion(f"chatcmpl-page-{index}", created=1_700_000_000 - index)
    ids = [item["id"] for item in http.get("/chat/completions", params={"limit": 100}).json()["data"]]
    assert ids == ["chatcmpl-page-2", "chatcmpl-page-1", "chatcmpl-page-0"]  # by created, ascending
    assert http.get("/chat/completions", params={"limit": 101}).status_code == 400
    assert http.get("/chat/completions", params={"limit": 0}).status_code == 400
    assert http.get("/chat/completions", params={"order": "sideways"}).status_code == 400
    for empty in ("limit", "order"):  # an empty value is neither an integer nor one of the enum's values
        rejected = http.get("/chat/completions", params={empty: ""})
        assert (rejected.status_code, error_of(rejected)["param"]) == (400, empty)
    assert http.get("/chat/completions", params={"after": "chatcmpl-unknown"}).status_code == 400
    empty = http.get("/chat/completions", params={"metadata[none]": "x"}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_paging_survives_deleting_the_cursor(server: LocalOpenAIServer, http: httpx.Client) -> None:
    for index in range(4):
        server.seed_completion(f"chatcmpl-del-{index}")
    first = http.get("/chat/completions", params={"limit": 2}).json()
    for item in first["data"]:
        assert http.delete(f"/chat/completions/{item['id']}").status_code == 200
    rest = http.get("/chat/completions", params={"limit": 2, "after": first["last_id"]}).json()
    assert [item["id"] for item in rest["data"]] == ["chatcmpl-del-2", "chatcmpl-del-3"]
    assert rest["has_more"] is False


# ----- faults -----


def test_scripted_status_faults_are_consumed_in_order(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.inject_fault(500)
    server.inject_fault(502, count=2)
    statuses = [http.get("/chat/completions").status_code for _ in range(4)]
    assert statuses == [500, 502, 502, 200]
    assert server.stats()["pending_faults"] == 0
    assert server.stats()["faults"] == {"scripted": 3}


def test_scripted_faults_match_method_and_completion(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.seed_completion("chatcmpl-a")
    server.seed_completion("chatcmpl-b")
    server.inject_fault(503, method="POST", completion_id="chatcmpl-b")
    assert http.get("/chat/completions/chatcmpl-b").status_code == 200
    assert update(http, "chatcmpl-a", {"x": "1"}).status_code == 200
    failed = update(http, "chatcmpl-b", {"x": "1"})
    assert failed.status_code == 503
    assert error_of(failed)["type"] == "server_error"
    assert update(http, "chatcmpl-b", {"x": "1"}).status_code == 200
    assert server.stats()["updates_by_completion"] == {"chatcmpl-a": 1, "chatcmpl-b": 1}


def test_scripted_429_headers(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.inject_fault(429, retry_after=0.25, retry_after_ms=250)
    response = http.get("/chat/completions")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0.25"
    assert response.headers["retry-after-ms"] == "250"
    assert error_of(response)["code"] == "rate_limit_exceeded"


def test_delay_fault_times_the_client_out_but_the_write_still_lands(
    server: LocalOpenAIServer, http: httpx.Client
) -> None:
    server.seed_completion("chatcmpl-slow")
    server.inject_fault(None, delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        update(http, "chatcmpl-slow", {"late": "yes"}, timeout=0.1)
    deadline = time.monotonic() + 3
    while server.stats()["updates_by_completion"].get("chatcmpl-slow") != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.metadata_of("chatcmpl-slow") == {"late": "yes"}


def test_reset_fault_drops_the_connection(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.seed_completion("chatcmpl-reset")
    server.inject_fault(action="reset", method="POST")
    with pytest.raises(httpx.TransportError):
        update(http, "chatcmpl-reset", {"a": "1"})
    assert server.metadata_of("chatcmpl-reset") == {}
    assert update(http, "chatcmpl-reset", {"a": "1"}).status_code == 200  # a new connection works
    assert server.stats()["statuses"] == {"reset": 1, "200": 1}


def test_burst_429_cycle(server: LocalOpenAIServer, http: httpx.Client) -> None:
    server.configure(burst_429_every=4, burst_429_length=2, retry_after=0.5)
    responses = [http.get("/chat/completions") for _ in range(8)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429, 200, 200, 429, 429]
    assert responses[2].headers["retry-after"] == "0.5"
    assert responses[2].headers["retry-after-ms"] == "500"
    assert server.stats()["faults"] == {"burst_429": 4}


def test_error_rate_is_reproducible_with_a_seed(server: LocalOpenAIServer, http: httpx.Client) -> None:
    def run() -> list[int]:
        server.configure(error_rate=0.5, seed=7)
        return [http.get("/chat/completions").status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert 5 < first.count(500) < 25
    assert set(first) == {200, 500}
    server.configure(error_rate=1.0)
    assert error_of(http.get("/chat/completions"))["type"] == "server_error"


def test_latency_knob_delays_v1_but_not_admin(
    server: LocalOpenAIServer, http: httpx.Client, admin: httpx.Client
) -> None:
    server.configure(latency=0.3)
    started = time.monotonic()
    assert http.get("/chat/completions").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert admin.get("/health").status_code == 200
    assert time.monotonic() - started < 0.25


def test_100_concurrent_requests_overlap(server: LocalOpenAIServer) -> None:
    server.configure(latency=0.2)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    with httpx.Client(base_url=server.base_url, headers=AUTH, limits=limits, timeout=10.0) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(lambda _: client.get("/chat/completions").status_code, range(100)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 100
    assert elapsed < 5.0, f"100 requests of 0.2 s took {elapsed:.1f} s: they did not run concurrently"
    assert server.stats()["requests"] == {"GET /v1/chat/completions": 100}


def test_stats_count_routes_statuses_and_writes(server: LocalOpenAIServer, http: httpx.Client) -> None:
    created = http.post(
        "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}], "store": True},
    ).json()
    completion_id = created["id"]
    update(http, completion_id, {"a": "1"})
    update(http, completion_id, {"a": "x" * 600})  # rejected: not a write
    http.get(f"/chat/completions/{completion_id}")
    http.get(f"/chat/completions/{completion_id}/messages")
    http.delete(f"/chat/completions/{completion_id}")
    stats = server.stats()
    assert stats["total"] == 6
    assert stats["requests"] == {
        "POST /v1/chat/completions": 1,
        ROUTE_UPDATE: 2,
        "GET /v1/chat/completions/{id}": 1,
        "GET /v1/chat/completions/{id}/messages": 1,
        "DELETE /v1/chat/completions/{id}": 1,
    }
    assert stats["statuses"] == {"200": 5, "400": 1}
    assert stats["updates_by_completion"] == {completion_id: 1}


# ----- admin endpoints -----


def test_admin_endpoints(server: LocalOpenAIServer, http: httpx.Client, admin: httpx.Client) -> None:
    assert admin.get("/health").json() == {"status": "ok"}

    seeded = admin.post("/completions", json={"id": "chatcmpl-admin", "metadata": {"a": "1"}})
    assert seeded.status_code == 200
    assert seeded.json()["object"] == "chat.completion"
    assert admin.get("/completions/chatcmpl-admin").json()["metadata"] == {"a": "1"}
    assert admin.post("/completions", json={"metadata": {"k": 1}}).status_code == 400
    generated = admin.post("/completions", json={}).json()["id"]
    assert generated.startswith("chatcmpl-")

    config = admin.post("/config", json={"latency": 0.0, "burst_429_every": 3, "burst_429_length": 1}).json()
    assert config["burst_429_every"] == 3
    assert config["api_key"] == "<set>"  # never revealed
    assert admin.post("/config", json={"error_rate": 2}).status_code == 400
    assert admin.post("/config", json={"no_such_knob": 1}).status_code == 400

    queued = admin.post("/faults", json=[{"status": 500}, {"status": 429, "count": 2, "retry_after": 1}])
    assert queued.json() == {"queued": 2, "pending": 2}
    assert admin.post("/faults", json={"status": 200}).status_code == 400
    assert admin.post("/faults", json={"stauts": 500}).status_code == 400
    assert [fault["status"] for fault in admin.get("/faults").json()["pending"]] == [500, 429]
    assert http.get("/chat/completions/chatcmpl-admin").status_code == 500

    stats = admin.get("/stats").json()
    assert stats["total"] == 1
    assert stats["pending_faults"] == 2
    assert stats["stored_completions"] == 2

    assert admin.post("/reset").json() == {"reset": True}
    assert admin.get("/stats").json()["total"] == 0
    assert admin.get("/faults").json() == {"pending": []}
    assert admin.get("/config").json()["burst_429_every"] == 0
    assert admin.get("/completions/chatcmpl-admin").status_code == 404
    assert admin.get("/unknown").status_code == 404


def test_reset_restores_construction_knobs_and_seeds() -> None:
    seeds = [{"id": "chatcmpl-initial", "metadata": {"from": "start"}}]
    with LocalOpenAIServer(latency=0.05, seed_completions=seeds) as server:
        server.configure(latency=0.0)
        server.seed_completion("chatcmpl-later")
        server.reset()
        assert server.app.knobs.latency == 0.05
        assert server.metadata_of("chatcmpl-initial") == {"from": "start"}
        assert server.completion("chatcmpl-later") is None


# ----- the command line -----


def test_cli_serves_seeded_completions_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed_file = tmp_path / "seeds.json"
    seed_file.write_text(json.dumps([{"id": "chatcmpl-cli", "metadata": {"via": "file"}}]))
    command = [sys.executable, "-m", "local_openai", "--port", "0", "--api-key", "k"]
    command += ["--seed-completions", str(seed_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
        assert found, line
        response = httpx.get(f"{found.group(1)}/chat/completions/chatcmpl-cli", headers={"Authorization": "Bearer k"})
        assert response.json()["metadata"] == {"via": "file"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
