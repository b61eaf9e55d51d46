"""Once a record of a completion goes back, the later records of that completion in the batch go back too."""

from __future__ import annotations

import pytest

from tagger.errors import CompletionsApiError, PutBack
from tagger.logic.hold_back import HoldBack
from tests.shared.fakes import Rig, put_backs, sqs_record


def test_a_chain_with_nothing_put_back_is_not_held() -> None:
    hold_back = HoldBack()
    hold_back.put_back("completion:other", PutBack("timeout", "x"))
    hold_back.check("completion:c1")


def test_the_later_records_carry_the_first_put_backs_code_status_and_delay() -> None:
    hold_back = HoldBack()
    hold_back.put_back("completion:c1", PutBack("rate_limited", "429", status=429, retry_after=7.0))
    hold_back.put_back("completion:c1", PutBack("timeout", "later, not the first"))
    with pytest.raises(PutBack) as held:
        hold_back.check("completion:c1")
    assert (held.value.code, held.value.status, held.value.retry_after) == ("rate_limited", 429, 7.0)
    assert "earlier request for this completion" in held.value.message


def test_through_a_batch_only_the_failed_completions_later_records_go_back() -> None:
    rig = Rig()
    rig.api.seed("c1")
    rig.api.seed("c2")
    rig.api.failures["c1"] = [
        CompletionsApiError("upstream_error", "OpenAI API answered 503", retryable=True, status=503)
    ]
    records = [
        sqs_record({"completion_id": "c1", "metadata": {"a": "1"}}),
        sqs_record({"completion_id": "c2", "metadata": {"a": "1"}}),
        sqs_record({"completion_id": "c1", "metadata": {"b": "2"}}),
        sqs_record({"completion_id": "c1", "metadata": {}}),  # invalid, but ordered behind the failed one
    ]
    response, outcomes = rig.run(records)
    assert put_backs(response) == [
        records[0]["messageId"],
        records[2]["messageId"],
        records[3]["messageId"],
    ]
    assert rig.api.calls.count(("GET", "c1")) == 1  # the first record only: the others never started
    assert rig.api.metadata["c2"] == {"a": "1"}
    assert outcomes.put_back["upstream_error"] == 3
    assert [event["completion_id"] for event in rig.publisher.events()] == ["c2"]
