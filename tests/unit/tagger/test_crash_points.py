"""Every crash point after an API write, on fakes (docs/design.md, "Crash safety").

For merge, replace and remove, every store and publisher call made after the API write of a request fails
(or the container dies just before or just after it) from position k on, for every k. Then the same message
comes again and a newer request with the same content as an older one. Whatever happened:
- the completion ends as the requests applied in their order say (`tools/local_stack/expected_state.py`),
- the newer request is never taken for a duplicate,
- each message gets one outcome (a repeated event carries the same message id and the same type),
- nothing applied is dead-lettered, and the request is written to the API once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from local_stack.expected_state import expected_metadata
from tagger.models import TagRequest, format_issued_at
from tests.shared.fakes import Rig, sqs_record
from tests.shared.faults import COMPLETION, AfterWrite, FaultyLeaseStore, FaultyPublisher, Queue

INITIAL = {"keep": "0", "verdict": "draft"}


def request(mode: str, issued_micros: int, **fields: Any) -> dict[str, Any]:
    return {"completion_id": COMPLETION, "mode": mode, "issued_at": format_issued_at(issued_micros), **fields}


# For each mode: an older request, the request under test, and a newer one with the older one's content
# (where a false duplicate would show).
SCENARIOS: dict[str, Callable[[int], list[dict[str, Any]]]] = {
    "merge": lambda t: [
        request("merge", t, metadata={"verdict": "approve"}),
        request("merge", t + 1, metadata={"verdict": "reject", "by": "x"}),
        request("merge", t + 2, metadata={"verdict": "approve"}),
    ],
    "replace": lambda t: [
        request("replace", t, metadata={"verdict": "approve"}),
        request("replace", t + 1, metadata={"verdict": "reject", "by": "x"}),
        request("replace", t + 2, metadata={"verdict": "approve"}),
    ],
    "remove": lambda t: [
        request("merge", t, metadata={"verdict": "approve"}),
        request("merge", t + 1, metadata={}, remove=["verdict", "keep"]),
        request("merge", t + 2, metadata={"verdict": "approve"}),
    ],
}
KINDS = ["fail", "crash-before", "crash-after"]
CALLS_AFTER_WRITE = 2  # publish, release


def run_scenario(mode: str, kind: str, k: int, *, newer_first: bool, last_delivery: bool) -> None:
    faults: list[AfterWrite] = []
    rig = Rig(
        max_concurrency=1,
        publisher=FaultyPublisher(lambda: faults[0]),
        lease_store=FaultyLeaseStore(lambda: faults[0]),
    )
    faults.append(AfterWrite(rig.api, k, kind))
    rig.api.seed(COMPLETION, INITIAL)
    queue = Queue(rig)
    older, tested, newer = SCENARIOS[mode](int(time.time() * 1_000_000) - 60_000_000)

    queue.deliver(sqs_record(older))
    queue.drain()
    record = sqs_record(tested, receive_count=rig.max_receive_count if last_delivery else 1)
    queue.deliver(record, faults[0])
    if newer_first:
        queue.deliver(sqs_record(newer))
        queue.drain()
    else:
        queue.drain()
        again = dict(record, attributes={**record["attributes"], "ApproximateReceiveCount": "2"})
        queue.deliver(again)  # the same message once more (SQS delivers at least once)
        queue.drain()
        queue.deliver(sqs_record(newer))
        queue.drain()
    queue.deliver(dict(record, attributes={**record["attributes"], "ApproximateReceiveCount": "3"}))
    queue.drain()

    in_order = [TagRequest.model_validate(body) for body in (older, tested, newer)]
    assert rig.api.metadata[COMPLETION] == expected_metadata(INITIAL, in_order)
    assert rig.api.writes(COMPLETION) == 3  # each request written once, however often it came
    assert queue.dead_lettered == []
    events = rig.publisher.events()
    outcomes: dict[str, set[str]] = {}
    for event in events:
        outcomes.setdefault(event["message_id"], set()).add("failed" if "error" in event else "tagged")
    assert all(len(kinds) == 1 for kinds in outcomes.values()), outcomes
    assert outcomes.get(record["messageId"]) == {"tagged"}
    newest = [event for event in events if event["metadata"] == rig.api.metadata[COMPLETION]]
    assert newest, "the newer request was taken for a duplicate"
    assert not any(event.get("error", {}).get("retryable") for event in events)
    assert rig.lease_store.leases[COMPLETION].in_flight is None  # everything settled in the end


@pytest.mark.parametrize("mode", sorted(SCENARIOS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", range(CALLS_AFTER_WRITE + 1))
@pytest.mark.parametrize("newer_first", [False, True], ids=["same-again-first", "newer-first"])
def test_every_crash_point_after_the_write_ends_as_the_order_says(
    mode: str, kind: str, k: int, newer_first: bool
) -> None:
    run_scenario(mode, kind, k, newer_first=newer_first, last_delivery=False)


@pytest.mark.parametrize("mode", sorted(SCENARIOS))
@pytest.mark.parametrize("k", range(CALLS_AFTER_WRITE + 1))
def test_an_applied_write_on_the_last_delivery_is_never_dead_lettered(mode: str, k: int) -> None:
    run_scenario(mode, "fail", k, newer_first=False, last_delivery=True)
