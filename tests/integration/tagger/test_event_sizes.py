"""Result events respect EventBridge's sizes: PutEvents calls of at most 256 KB, details well under 64 KB.

moto's EventBridge may not enforce the request limit (AWS answers a larger request with a ValidationException
and the whole call fails), so accepting the events proves nothing here: the test watches every PutEvents
call the function makes, through botocore's event hooks, and measures it as EventBridge does.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tagger.adapters.event_entries import MAX_CALL_ENTRY_BYTES, entry_size
from tests.integration.harness import Harness, Seeder

pytestmark = pytest.mark.integration

WIDE = "😀"  # 4 bytes in UTF-8


def watched_session(calls: list[list[dict[str, Any]]]) -> boto3.session.Session:
    session = boto3.session.Session()

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(list(params["Entries"]))

    session.events.register("provide-client-params.events.PutEvents", record)
    return session


def test_ten_large_results_go_out_in_calls_within_the_request_limit(harness: Harness, seed: Seeder) -> None:
    calls: list[list[dict[str, Any]]] = []
    completions = [seed() for _ in range(10)]
    bodies: list[str | dict[str, Any]] = [
        {
            "completion_id": completion,
            "mode": "replace",
            "metadata": {f"{index:02d}".ljust(64, WIDE): WIDE * 512 for index in range(16)},
        }
        for completion in completions
    ]
    harness.api.configure(latency=0.2)  # the ten writes end together, so their events wait for each other
    response, _ = harness.run(harness.service(watched_session(calls), max_concurrency=10), bodies)

    assert response == {"batchItemFailures": []}  # no applied record goes back for want of its event
    sizes = [sum(entry_size(entry) for entry in call) for call in calls]
    assert sum(len(call) for call in calls) == 10
    assert sum(sizes) > MAX_CALL_ENTRY_BYTES  # one call could not have carried them
    assert all(size < MAX_CALL_ENTRY_BYTES for size in sizes), sizes
    tagged = harness.events(10)
    assert sorted(event["detail"]["completion_id"] for event in tagged) == sorted(completions)
    assert all(len(event["detail"]["metadata"]) == 16 for event in tagged)
