"""events/: sample Lambda SQS events and the `sam local invoke` environment.

The samples are checked at the JSON level against the README's "Tag requests" rules with the small validator
below, not with the function's own parser: the handler-level test lives elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infrastructure._template import EVENTS_DIR, load_json

pytestmark = pytest.mark.infrastructure

SQS_SAMPLES = sorted(EVENTS_DIR.glob("sqs-*.json"))
EXPECTED_SAMPLES = {"sqs-merge.json", "sqs-replace.json", "sqs-mixed-batch.json", "sqs-eventbridge-envelope.json"}
DEMO_IDS = {f"chatcmpl-demo-{n:04d}" for n in range(1, 5)}

RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}
ATTRIBUTE_KEYS = {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
SQS_ARN = re.compile(r"^arn:aws:sqs:(?P<region>[a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,80}$")
ENVELOPE_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}

# README, "Tag requests".
REQUEST_FIELDS = {"completion_id", "metadata", "mode", "remove", "request_id"}
COMPLETION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def tag_request_problems(request: Any) -> list[str]:
    """Why `request` is not a valid tag request (README, "Tag requests"); empty when it is one."""
    if not isinstance(request, dict):
        return ["not an object"]
    problems = [f"unknown field {name!r}" for name in sorted(set(request) - REQUEST_FIELDS)]
    completion_id = request.get("completion_id")
    if not isinstance(completion_id, str) or not COMPLETION_ID.match(completion_id):
        problems.append("completion_id: 1-128 characters of A-Z a-z 0-9 _ -")
    metadata = request.get("metadata")
    if not isinstance(metadata, dict):
        problems.append("metadata: required object")
        metadata = {}
    if len(metadata) > 16:
        problems.append("metadata: at most 16 keys")
    for key, value in metadata.items():
        if not 1 <= len(key) <= 64:
            problems.append(f"metadata key {key!r}: 1-64 characters")
        if not isinstance(value, str) or len(value) > 512:
            problems.append(f"metadata[{key!r}]: a string of at most 512 characters")
    mode = request.get("mode", "merge")
    if mode not in ("merge", "replace"):
        problems.append("mode: merge or replace")
    remove = request.get("remove", [])
    if not isinstance(remove, list) or not all(isinstance(item, str) for item in remove):
        problems.append("remove: array of strings")
        remove = []
    if mode == "replace" and remove:
        problems.append("remove: only with merge")
    if mode == "merge" and not metadata and not remove:
        problems.append("merge sets nothing and removes nothing")
    request_id = request.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 128):
        problems.append("request_id: a string of at most 128 characters")
    return problems


def tag_request_of(body: dict[str, Any]) -> Any:
    """The tag request a message body carries: itself, or an EventBridge event's detail."""
    if {"detail-type", "source", "detail"} <= set(body):
        return body["detail"]
    return body


def records(name: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = load_json(EVENTS_DIR / name)["Records"]
    return records


def bodies(name: str) -> list[Any]:
    return [json.loads(record["body"]) for record in records(name)]


def test_events_directory_has_every_sample() -> None:
    assert {path.name for path in SQS_SAMPLES} == EXPECTED_SAMPLES
    assert (EVENTS_DIR / "env.json").is_file()


@pytest.mark.parametrize("path", sorted(EVENTS_DIR.glob("*.json")), ids=lambda path: path.name)
def test_every_events_file_is_valid_json(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SQS_SAMPLES, ids=lambda path: path.name)
def test_sample_has_the_full_lambda_sqs_event_shape(path: Path) -> None:
    event = load_json(path)
    assert set(event) == {"Records"} and event["Records"]
    message_ids = [record["messageId"] for record in event["Records"]]
    assert len(set(message_ids)) == len(message_ids), "message ids are unique within a batch"
    for record in event["Records"]:
        assert set(record) == RECORD_KEYS
        assert record["eventSource"] == "aws:sqs"
        arn = SQS_ARN.match(record["eventSourceARN"])
        assert arn and arn["region"] == record["awsRegion"]
        assert set(record["attributes"]) == ATTRIBUTE_KEYS
        for name in ("ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"):
            assert isinstance(record["attributes"][name], str) and record["attributes"][name].isdigit()
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1
        assert isinstance(record["messageAttributes"], dict)
        assert isinstance(record["body"], str), "an SQS body is a JSON string, not an object"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode("utf-8")).hexdigest()
        json.loads(record["body"])


def test_merge_sample_is_a_valid_merge_with_a_remove() -> None:
    (request,) = bodies("sqs-merge.json")
    assert tag_request_problems(request) == []
    assert request.get("mode", "merge") == "merge"
    assert request["remove"] and request["metadata"]


def test_replace_sample_is_a_valid_replace() -> None:
    (request,) = bodies("sqs-replace.json")
    assert tag_request_problems(request) == []
    assert request["mode"] == "replace" and "remove" not in request


def test_mixed_batch_has_a_valid_request_a_typo_and_an_exact_duplicate() -> None:
    batch = records("sqs-mixed-batch.json")
    valid, invalid, duplicate = (json.loads(record["body"]) for record in batch)
    assert tag_request_problems(valid) == []
    assert "unknown field 'metdata'" in tag_request_problems(invalid)
    assert batch[2]["body"] == batch[0]["body"], "the duplicate is the same message body"
    assert batch[2]["messageId"] != batch[0]["messageId"]
    assert duplicate == valid


def test_eventbridge_sample_wraps_a_valid_request_in_an_event() -> None:
    (event,) = bodies("sqs-eventbridge-envelope.json")
    assert set(event) == ENVELOPE_KEYS
    assert event["detail-type"] == "CompletionTagRequested"
    assert event["source"] and event["source"] != "completion-tagger"
    assert isinstance(event["resources"], list)
    assert tag_request_problems(tag_request_of(event)) == []


def test_samples_use_the_seeded_demo_completions() -> None:
    used = {tag_request_of(body).get("completion_id") for path in SQS_SAMPLES for body in bodies(path.name)}
    assert used == DEMO_IDS
    seeded = {item["id"] for item in load_json(EVENTS_DIR / "local-openai-seed.json")["completions"]}
    assert seeded >= DEMO_IDS


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        ({"completion_id": "a/b", "metadata": {"k": "v"}}, "completion_id"),
        ({"completion_id": "x" * 129, "metadata": {"k": "v"}}, "completion_id"),
        ({"completion_id": "c", "metadata": {"k": 1}}, "metadata['k']"),
        ({"completion_id": "c", "metadata": {"k": None}}, "metadata['k']"),
        ({"completion_id": "c", "metadata": {"k": "é" * 513}}, "metadata['k']"),
        ({"completion_id": "c", "metadata": {str(n): "v" for n in range(17)}}, "at most 16 keys"),
        ({"completion_id": "c", "metadata": {"k" * 65: "v"}}, "1-64 characters"),
        ({"completion_id": "c", "metadata": {}}, "sets nothing"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "mode": "replace", "remove": ["x"]}, "only with merge"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "mode": "upsert"}, "mode"),
        ({"completion_id": "c", "metadata": {"k": "v"}, "request_id": "r" * 129}, "request_id"),
    ],
)
def test_the_request_check_rejects_what_the_readme_rejects(request_body: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in tag_request_problems(request_body))


def test_the_request_check_counts_characters_not_bytes() -> None:
    assert tag_request_problems({"completion_id": "c", "metadata": {"k": "é" * 512}}) == []
    assert tag_request_problems({"completion_id": "c", "metadata": {}, "remove": ["k"]}) == []


# --- env.json ------------------------------------------------------------------------------------


def test_env_json_points_sam_local_at_the_local_openai_server(variables: dict[str, Any]) -> None:
    env = load_json(EVENTS_DIR / "env.json")
    assert set(env) == {"TaggerFunction"}
    values = env["TaggerFunction"]
    assert all(isinstance(value, str) for value in values.values())
    assert values["OPENAI_BASE_URL"] == "http://host.docker.internal:8010/v1"
    assert values["OPENAI_API_KEY_SECRET"] == "", "empty: the function uses OPENAI_API_KEY locally"
    assert values["OPENAI_API_KEY"] and not values["OPENAI_API_KEY"].startswith("sk-")
    assert values["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert values["AWS_ENDPOINT_URL"].startswith("http://host.docker.internal:")


def test_env_json_sets_only_variables_the_template_declares(variables: dict[str, Any]) -> None:
    """SAM CLI silently drops --env-vars entries the function's template does not declare."""
    env = load_json(EVENTS_DIR / "env.json")["TaggerFunction"]
    assert set(env) <= set(variables)
