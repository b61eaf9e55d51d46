"""The run's check of the shared completions, and the samples it checks."""

from __future__ import annotations

import json
from collections import Counter

from local_stack.run_report import verification_lines
from local_stack.samples import TagRequest, load_samples
from local_stack.send_order import Difference, Verification, verify_send_order


def request(body: dict[str, object] | str) -> TagRequest:
    return TagRequest(label="x", body=body if isinstance(body, str) else json.dumps(body))


def test_completions_that_hold_their_requests_in_send_order_match_and_others_are_named() -> None:
    requests = [
        request({"completion_id": "a", "metadata": {"verdict": "approved"}}),
        request({"completion_id": "b", "metadata": {"k": "1"}}),
        request({"completion_id": "a", "metadata": {"verdict": "rejected"}}),
        request({"completion_id": "b", "mode": "replace", "metadata": {"only": "this"}}),
    ]
    held = {"a": {"team": "x", "verdict": "approved"}, "b": {"only": "this"}}

    verification = verify_send_order({"a": {"team": "x"}, "b": {"old": "y"}}, requests, held.__getitem__)

    assert verification.matched == ("b",)
    assert verification.differences == (
        Difference("a", actual={"team": "x", "verdict": "approved"}, expected={"team": "x", "verdict": "rejected"}),
    )
    assert verification.checked == 2


def test_a_request_that_is_not_valid_changes_nothing() -> None:
    requests = [
        request("not json"),
        request({"completion_id": "a", "metdata": {}}),
        request({"completion_id": "a", "metadata": {"k": "v"}}),
    ]
    verification = verify_send_order({}, requests, lambda _: {"k": "v"})
    assert verification.matched == ("a",) and not verification.differences


def test_the_samples_conflict_on_shared_completions_with_a_put_back_among_them() -> None:
    samples = load_samples()
    per_completion = Counter(r.completion_id for r in samples.shared)
    assert len(per_completion) >= 2 and min(per_completion.values()) >= 2
    assert set(per_completion) <= set(samples.completions)
    assert not {r.completion_id for r in samples.requests} & set(per_completion)
    assert any(f.completion_id in per_completion and f.method == "POST" for f in samples.faults)


def test_the_summary_says_how_many_match_or_names_each_completion_that_differs() -> None:
    assert verification_lines(None) == []
    (line,) = verification_lines(Verification(matched=("a", "b"), differences=()))
    assert line == "  verified        2      completions match the send order: a, b"
    lines = verification_lines(
        Verification(matched=("a",), differences=(Difference("b", {"verdict": "approved"}, {"verdict": "rejected"}),))
    )
    assert lines == [
        "  verified        1 of 2 completions match the send order; these differ:",
        "    b holds verdict=approved; in send order its requests give verdict=rejected",
    ]
