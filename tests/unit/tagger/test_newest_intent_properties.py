"""Property-based: whatever order requests are delivered in, however often, and wherever a delivery fails or
dies after its API write, a completion ends as its requests applied one by one in their order
(`tools/local_stack/expected_state.py`; README, "Tag requests": the newest intent wins)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_stack.expected_state import expected_metadata
from tagger.models import TagRequest, format_issued_at
from tests.shared.fakes import Rig, sqs_record
from tests.shared.faults import COMPLETION, AfterWrite, FaultyLeaseStore, FaultyPublisher, Queue

KEYS = ["a", "b", "c"]
INITIAL = {"a": "outside", "z": "outside"}
BASE_MICROS = int(time.time() * 1_000_000) - 3_600_000_000

values = st.sampled_from(["1", "2"])


@st.composite
def tag_requests(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"mode": "replace", "metadata": draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=3))}
    metadata = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=3))
    remove = draw(st.lists(st.sampled_from([key for key in [*KEYS, "z"] if key not in metadata]), unique=True))
    if not metadata and not remove:
        remove = ["z"]
    return {"mode": "merge", "metadata": metadata, "remove": remove}


faults = st.sampled_from([None, ("fail", 0), ("fail", 1), ("crash-before", 0), ("crash-after", 0), ("crash-after", 1)])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[int, Any]]]:
    requests = draw(st.lists(tag_requests(), min_size=1, max_size=5))
    offsets = draw(st.lists(st.integers(0, 10_000), min_size=len(requests), max_size=len(requests), unique=True))
    bodies = [
        {"completion_id": COMPLETION, **fields, "issued_at": format_issued_at(BASE_MICROS + offset * 1000)}
        for fields, offset in zip(requests, offsets, strict=True)
    ]
    extra = draw(st.lists(st.integers(0, len(bodies) - 1), max_size=4))
    plan = draw(st.permutations([*range(len(bodies)), *extra]))
    return bodies, [(index, draw(faults)) for index in plan]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_completion_ends_as_its_requests_applied_in_their_order(
    scenario: tuple[list[dict[str, Any]], list[tuple[int, Any]]],
) -> None:
    bodies, plan = scenario
    injected: list[AfterWrite] = []
    rig = Rig(
        max_concurrency=1,
        publisher=FaultyPublisher(lambda: injected[-1]),
        lease_store=FaultyLeaseStore(lambda: injected[-1]),
    )
    injected.append(AfterWrite(rig.api, 0, "fail"))
    rig.api.seed(COMPLETION, INITIAL)
    queue = Queue(rig)
    records = [sqs_record(body) for body in bodies]
    delivered: set[int] = set()
    for index, fault in plan:
        record = records[index]
        if index in delivered:  # SQS delivers the same message again
            count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
            record = dict(record, attributes={**record["attributes"], "ApproximateReceiveCount": str(count)})
        delivered.add(index)
        if fault is None:
            queue.deliver(record)
        else:
            injected.append(AfterWrite(rig.api, fault[1], fault[0]))
            queue.deliver(record, injected[-1])
    queue.drain()

    in_order = sorted(bodies, key=lambda body: body["issued_at"])
    assert rig.api.metadata[COMPLETION] == expected_metadata(
        INITIAL, [TagRequest.model_validate(body) for body in in_order]
    )
    outcomes: dict[str, set[bool]] = {}
    for event in rig.publisher.events():
        outcomes.setdefault(event["message_id"], set()).add("error" in event)
    assert all(len(kinds) == 1 for kinds in outcomes.values())
    assert queue.dead_lettered == []
    assert rig.api.writes(COMPLETION) <= len(bodies)  # no request written twice
