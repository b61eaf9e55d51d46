"""Property-based: any body at all yields a valid request or a validation error, never an exception."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagger.errors import InvalidTagRequest
from tagger.logic.parsing import parse_tag_request
from tagger.models import TagFailedDetail

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
request_like = st.fixed_dictionaries(
    {
        "completion_id": st.text(max_size=200),
        "metadata": st.dictionaries(st.text(max_size=80), json_values, max_size=20),
    },
    optional={
        "mode": st.sampled_from(["merge", "replace", "other", ""]) | json_values,
        "remove": st.lists(st.text(max_size=70), max_size=5) | json_values,
        "request_id": st.text(max_size=200) | json_values,
        "extra": json_values,
    },
)


def outcome_of(body: str) -> str:
    """Parse like the handler does; a failure must be an InvalidTagRequest with a small, usable detail."""
    try:
        parse_tag_request(body)
    except InvalidTagRequest as invalid:
        detail = TagFailedDetail(
            completion_id=invalid.completion_id,
            request_id=invalid.request_id,
            message_id="m" * 100,
            error={"code": "validation_error", "message": invalid.message, "retryable": False},
        )
        assert invalid.message
        assert len(detail.model_dump_json().encode()) < 8 * 1024
        return "invalid"
    return "valid"


@given(st.binary(max_size=2000))
def test_any_bytes(raw: bytes) -> None:
    outcome_of(raw.decode("utf-8", errors="surrogateescape"))


@given(st.text(max_size=2000))
def test_any_text(text: str) -> None:
    outcome_of(text)


@given(json_values)
def test_any_json(value: object) -> None:
    outcome_of(json.dumps(value))


@given(request_like)
def test_request_shaped_json(document: dict[str, object]) -> None:
    outcome_of(json.dumps(document))


@given(request_like, st.text(max_size=30), st.text(max_size=30))
def test_wrapped_in_an_eventbridge_envelope(document: dict[str, object], detail_type: str, source: str) -> None:
    outcome_of(json.dumps({"detail-type": detail_type, "source": source, "detail": document}))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=1, max_value=100_000), st.sampled_from(["[", '{"a":']))
def test_deeply_nested(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    assert outcome_of(opener * depth + "1" + closer * depth) == "invalid"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(min_value=100_000, max_value=1_000_000), st.characters())
def test_huge_values(size: int, char: str) -> None:
    outcome_of(json.dumps({"completion_id": char * size, "metadata": {char: char * size}, "request_id": char * size}))


@given(st.dictionaries(st.text(min_size=1, max_size=64), st.text(max_size=512), min_size=1, max_size=16))
def test_every_valid_request_parses(metadata: dict[str, str]) -> None:
    body = json.dumps({"completion_id": "chatcmpl-1", "metadata": metadata}, ensure_ascii=False)
    assert parse_tag_request(body).metadata == metadata
