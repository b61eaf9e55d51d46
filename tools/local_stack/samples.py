"""The tag requests a local run sends: the sample file, generated extras, or one merge per given id."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from local_openai.faults import ScriptedFault

SAMPLE_FILE = Path(__file__).with_name("sample_requests.json")
DEFAULT_UPSTREAM_SOURCE = "upstream.local"

# Keys the generated requests draw from: with the seeded keys, a completion stays within 16 keys.
_GENERATED_KEYS = ("reviewed", "quality", "topic", "reviewer", "batch", "priority", "language", "dataset")
_GENERATED_VALUES = ("true", "false", "high", "low", "ana", "bo", "eval", "train", "en", "fr", "p1", "p2")

Via = Literal["sqs", "eventbridge"]


@dataclass(frozen=True)
class TagRequest:
    """One message to send: its exact body and the route it takes to the queue."""

    label: str
    body: str
    via: Via = "sqs"
    source: str = DEFAULT_UPSTREAM_SOURCE  # the EventBridge `Source` when via == "eventbridge"
    # An upstream event of a foreign shape (not a tag request): its DetailType, for a mapping rule.
    detail_type: str | None = None
    raw: bool = False  # the body is sent verbatim, never validated (a sample of a malformed message)

    @property
    def completion_id(self) -> str | None:
        try:
            value = json.loads(self.body).get("completion_id")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class SampleSet:
    """Completions to seed on the local OpenAI server (id → metadata) and the requests to send.

    `shared` are conflicting requests for a few completions, sent one by one after `requests`, with
    `faults` scripted on the local server before them; the run checks those completions at the end.
    """

    completions: dict[str, dict[str, str]]
    requests: list[TagRequest]
    shared: list[TagRequest] = field(default_factory=list)
    faults: list[ScriptedFault] = field(default_factory=list)

    @property
    def shared_completions(self) -> list[str]:
        """The completions the shared requests are for, in order of first appearance."""
        return list(dict.fromkeys(cid for request in self.shared if (cid := request.completion_id) is not None))


def load_samples(path: Path = SAMPLE_FILE) -> SampleSet:
    """Read the sample file; a malformed entry is a ValueError naming it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    completions = {str(key): {str(k): str(v) for k, v in value.items()} for key, value in data["completions"].items()}
    requests = [_request_from_entry(index, entry) for index, entry in enumerate(data["requests"])]
    shared_data = data.get("shared", {})
    shared = [_request_from_entry(index, entry) for index, entry in enumerate(shared_data.get("requests", []))]
    shared_ids = {request.completion_id for request in shared}
    for request in shared:
        if request.via != "sqs" or request.completion_id not in completions:
            raise ValueError(f"{request.label}: a shared request goes to the queue, for a seeded completion")
    for request in requests:
        if request.completion_id in shared_ids:
            raise ValueError(f"{request.label}: {request.completion_id} is a shared completion; add it to shared")
    try:
        faults = [ScriptedFault.from_json(entry) for entry in shared_data.get("faults", [])]
    except (TypeError, ValueError) as error:
        raise ValueError(f"shared faults: {error}") from None
    return SampleSet(completions=completions, requests=requests, shared=shared, faults=faults)


def _request_from_entry(index: int, entry: dict[str, Any]) -> TagRequest:
    label = str(entry.get("label") or f"request {index}")
    via = entry.get("via", "sqs")
    if via not in ("sqs", "eventbridge"):
        raise ValueError(f"{label}: via must be sqs or eventbridge")
    if "raw_body" in entry:
        if via != "sqs":
            raise ValueError(f"{label}: an EventBridge detail must be a JSON object, not raw_body")
        body = str(entry["raw_body"])
    elif isinstance(entry.get("body"), dict):
        body = json.dumps(entry["body"])
    else:
        raise ValueError(f"{label}: needs a body object or a raw_body string")
    detail_type = entry.get("detail_type")
    if detail_type is not None and via != "eventbridge":
        raise ValueError(f"{label}: detail_type is for via eventbridge")
    return TagRequest(
        label=label,
        body=body,
        via=via,
        source=str(entry.get("source", DEFAULT_UPSTREAM_SOURCE)),
        detail_type=None if detail_type is None else str(detail_type),
        raw="raw_body" in entry,
    )


def generated_requests(count: int, completion_ids: list[str], rng: random.Random) -> list[TagRequest]:
    """`count` valid random requests over `completion_ids` (mostly merges; some replaces, removes, and
    one in ten through EventBridge) for a longer run."""
    requests = []
    for index in range(count):
        metadata = {key: rng.choice(_GENERATED_VALUES) for key in rng.sample(_GENERATED_KEYS, rng.randint(1, 3))}
        body: dict[str, Any] = {
            "completion_id": rng.choice(completion_ids),
            "metadata": metadata,
            "request_id": f"generated-{index + 1:04d}",
        }
        roll = rng.random()
        if roll < 0.1:
            body["mode"] = "replace"
        elif roll < 0.2:
            body["remove"] = [rng.choice([key for key in _GENERATED_KEYS if key not in metadata])]
        via: Via = "eventbridge" if index % 10 == 9 else "sqs"
        requests.append(TagRequest(label=f"generated {index + 1}", body=json.dumps(body), via=via))
    return requests


def merge_requests(completion_ids: list[str], tags: dict[str, str]) -> list[TagRequest]:
    """One merge of `tags` per completion id (the real-OpenAI mode)."""
    return [
        TagRequest(
            label=f"merge {completion_id}",
            body=json.dumps(
                {"completion_id": completion_id, "metadata": tags, "request_id": f"local-stack-{index + 1:04d}"}
            ),
        )
        for index, completion_id in enumerate(completion_ids)
    ]


def read_completion_ids(path: Path) -> list[str]:
    """One id per line; blank lines and lines starting with # are skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """`["k=v", ...]` → {"k": "v"}; a pair without `=` or with an empty key is a ValueError."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key.strip()] = value
    return tags
