"""The local OpenAI server's core without sockets: validation, store ordering, fault decisions, CLI input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_openai.error_responses import ErrorResponse
from local_openai.faults import FaultInjector, ScriptedFault
from local_openai.knobs import Knobs
from local_openai.metadata import validate_metadata
from local_openai.request_pipeline import LocalOpenAIApp
from local_openai.serve_command import load_seed_completions, serve
from local_openai.wire import Request, Response

AUTH = {"authorization": "Bearer k"}


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def call(app: LocalOpenAIApp, method: str, path: str, body: Any = None, **query: str) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    return app.handle(Request(method, path, {k: [v] for k, v in query.items()}, AUTH, raw))


# ----- metadata limits -----


def test_metadata_limits_accept_the_boundaries() -> None:
    exactly = {f"{i:02d}" + "k" * 62: "é" * 512 for i in range(16)}
    assert validate_metadata(exactly) == exactly
    assert validate_metadata(None) == {}


@pytest.mark.parametrize(
    ("value", "code", "param"),
    [
        ([], "invalid_type", "metadata"),
        ({"": "v"}, "string_below_min_length", "metadata"),
        ({"k": None}, "invalid_type", "metadata.k"),
        ({"k": True}, "invalid_type", "metadata.k"),
        ({"k": "é" * 513}, "string_above_max_length", "metadata.k"),
    ],
)
def test_metadata_limits_reject(value: object, code: str, param: str) -> None:
    with pytest.raises(ErrorResponse) as caught:
        validate_metadata(value)
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, code, param)


# ----- knobs and scripted faults -----


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"latency": -1},
        {"latency": float("inf")},
        {"burst_429_every": 2, "burst_429_length": 3},
        {"seed": "7"},
        {"api_key": ""},
        {"metadata_update": "patch"},
        {"unknown": 1},
    ],
)
def test_invalid_knobs_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Knobs().with_changes(changes)


def test_public_knobs_hide_the_api_key() -> None:
    assert Knobs(api_key="sk-secret").public()["api_key"] == "<set>"
    assert "sk-secret" not in json.dumps(Knobs(api_key="sk-secret").public())


@pytest.mark.parametrize(
    "data",
    [{"status": 200}, {"count": 0}, {"action": "explode"}, {"delay": -1}, {"retry_after_ms": 1.5}, {"x": 1}, []],
)
def test_invalid_scripted_faults_are_rejected(data: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        ScriptedFault.from_json(data)


def test_burst_cycle_fails_the_last_requests_of_each_window() -> None:
    injector = FaultInjector()
    knobs = Knobs(burst_429_every=3, burst_429_length=1, retry_after=2)
    decisions = [injector.decide(knobs, "GET", None) for _ in range(6)]
    assert [d.status if d else 200 for d in decisions] == [200, 200, 429, 200, 200, 429]
    assert decisions[2] is not None
    assert decisions[2].headers == {"Retry-After": "2", "retry-after-ms": "2000"}


def test_scripted_faults_take_precedence_and_skip_non_matching_requests() -> None:
    injector = FaultInjector()
    injector.push([ScriptedFault(status=409, completion_id="b"), ScriptedFault(status=500)])
    knobs = Knobs()
    first = injector.decide(knobs, "GET", "a")
    second = injector.decide(knobs, "GET", "b")
    assert (first and first.status, second and second.status) == (500, 409)
    assert injector.decide(knobs, "GET", "b") is None


# ----- the app pipeline -----


def test_latency_and_delay_sleep_through_the_injected_sleeper() -> None:
    sleeps = Sleeps()
    app = LocalOpenAIApp(Knobs(latency=0.3), sleep=sleeps)
    app.push_faults([ScriptedFault(status=None, delay=1.5)])
    assert call(app, "GET", "/v1/chat/completions").status == 200
    assert call(app, "GET", "/_local/health").status == 200
    assert sleeps.calls == [0.3, 1.5]


def test_update_replaces_and_counts_only_successful_writes() -> None:
    app = LocalOpenAIApp(Knobs(), seed_completions=[{"id": "c1", "metadata": {"a": "1"}}])
    assert call(app, "POST", "/v1/chat/completions/c1", {"metadata": {"b": "2"}}).body["metadata"] == {"b": "2"}
    assert call(app, "POST", "/v1/chat/completions/c1", {"metadata": {"b": 2}}).status == 400
    assert call(app, "POST", "/v1/chat/completions/c2", {"metadata": {}}).status == 404
    assert app.stats.snapshot()["updates_by_completion"] == {"c1": 1}


def test_with_the_merge_knob_an_update_merges_into_the_stored_metadata() -> None:
    app = LocalOpenAIApp(Knobs(metadata_update="merge"), seed_completions=[{"id": "c1", "metadata": {"a": "1"}}])
    answer = call(app, "POST", "/v1/chat/completions/c1", {"metadata": {"b": "2"}})
    assert answer.body["metadata"] == {"a": "1", "b": "2"}
    assert call(app, "GET", "/v1/chat/completions/c1").body["metadata"] == {"a": "1", "b": "2"}
    too_many = {f"k{index}": "v" for index in range(15)}
    assert call(app, "POST", "/v1/chat/completions/c1", {"metadata": too_many}).status == 400  # 17 keys merged
    assert call(app, "GET", "/v1/chat/completions/c1").body["metadata"] == {"a": "1", "b": "2"}


def test_percent_encoded_ids_are_decoded() -> None:
    app = LocalOpenAIApp(Knobs(), seed_completions=[{"id": "chat:1"}])
    assert call(app, "GET", "/v1/chat/completions/chat%3A1").body["id"] == "chat:1"


def test_lone_surrogates_do_not_break_encoding() -> None:
    app = LocalOpenAIApp(Knobs(), seed_completions=[{"id": "c1"}])
    raw = b'{"metadata": {"k": "\\ud800"}}'
    response = app.handle(Request("POST", "/v1/chat/completions/c1", {}, AUTH, raw))
    assert response.status == 200
    assert b"\\ud800" in response.encoded_body()


def test_list_orders_by_created_then_insertion() -> None:
    seeds = [{"id": "late", "created": 20}, {"id": "early-1", "created": 10}, {"id": "early-2", "created": 10}]
    app = LocalOpenAIApp(Knobs(), seed_completions=seeds)
    ascending = call(app, "GET", "/v1/chat/completions").body
    assert [item["id"] for item in ascending["data"]] == ["early-1", "early-2", "late"]
    descending = call(app, "GET", "/v1/chat/completions", order="desc", limit="2").body
    assert [item["id"] for item in descending["data"]] == ["late", "early-2"]
    assert descending["has_more"] is True
    after = call(app, "GET", "/v1/chat/completions", order="desc", after="early-2").body
    assert [item["id"] for item in after["data"]] == ["early-1"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        *[({"limit": value}, "limit") for value in ("", " 5", "1_0", "٣")],
        *[({"order": value}, "order") for value in ("", "ASC", "sideways")],
    ],
)
def test_paging_values_outside_their_type_or_enum_are_400_naming_the_parameter(
    query: dict[str, str], param: str
) -> None:
    app = LocalOpenAIApp(Knobs(), seed_completions=[{"id": "c1"}])
    for path in ("/v1/chat/completions", "/v1/chat/completions/c1/messages"):
        response = call(app, "GET", path, **query)
        assert response.status == 400
        assert response.body["error"]["param"] == param
        assert response.body["error"]["type"] == "invalid_request_error"


def test_unserved_methods_of_served_paths_are_405_and_unknown_paths_404() -> None:
    app = LocalOpenAIApp(Knobs(), seed_completions=[{"id": "c1"}])
    put = call(app, "PUT", "/v1/chat/completions/c1", {"metadata": {}})
    assert (put.status, put.headers["Allow"], put.body["error"]["code"]) == (
        405,
        "DELETE, GET, POST",
        "method_not_allowed",
    )
    assert call(app, "DELETE", "/v1/chat/completions").headers["Allow"] == "GET, POST"
    assert call(app, "POST", "/v1/chat/completions/c1/messages").headers["Allow"] == "GET"
    assert call(app, "PUT", "/v1/models").status == 404
    assert "Allow" not in call(app, "PUT", "/v1/models").headers
    assert app.stats.snapshot()["statuses"] == {"405": 3, "404": 2}


@pytest.mark.parametrize("spec", [{"id": "a/b"}, {"id": ""}, {"created": -1}, {"messages": []}, {"idd": "x"}])
def test_invalid_seed_completions_are_rejected(spec: dict[str, Any]) -> None:
    app = LocalOpenAIApp(Knobs())
    with pytest.raises(ErrorResponse):
        app.seed_completion(spec)


def test_missing_bearer_is_401_before_any_fault() -> None:
    app = LocalOpenAIApp(Knobs())
    app.push_faults([ScriptedFault(status=500)])
    response = app.handle(Request("GET", "/v1/chat/completions"))
    assert response.status == 401
    assert app.stats.snapshot()["statuses"] == {"401": 1}
    assert call(app, "GET", "/v1/chat/completions").status == 500  # the fault was still pending


# ----- command line input -----


def test_seed_file_accepts_a_list_or_a_completions_object(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"id": "a"}]))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"completions": [{"id": "b"}]}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"id": "c"}))
    assert load_seed_completions(listed) == [{"id": "a"}]
    assert load_seed_completions(wrapped) == [{"id": "b"}]
    with pytest.raises(ValueError):
        load_seed_completions(broken)


def test_cli_flags() -> None:
    args = serve.make_context(
        "local-openai", ["--port", "9", "--burst-429-every", "10", "--burst-429-length", "2", "--retry-after", "0.5"]
    ).params
    assert (args["host"], args["port"], args["burst_429_every"], args["burst_429_length"], args["retry_after"]) == (
        "127.0.0.1",
        9,
        10,
        2,
        0.5,
    )
    assert args["verbose"] is False
