"""The result events the function publishes (README, "Result events"): one registry from EventBridge
DetailType to detail model.

The publisher names each event by its detail's entry, the schema generator (`event_schemas`) writes one
schema per entry, and readers of the events (the local stack's observer, the CLI's wait) know the detail
types from it. Adding a result event: its detail model in `models.py` (a member of `ResultDetail`), one
entry in RESULT_EVENTS, and the rest of the recipe in docs/contributing.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from tagger.models import TAG_FAILED_DETAIL_TYPE, TAGGED_DETAIL_TYPE, ResultDetail, TagFailedDetail, TaggedDetail


@dataclass(frozen=True)
class ResultEvent:
    """One kind of result event: its DetailType, its detail's model, and what its published schema says of it."""

    detail_type: str
    detail: type[BaseModel]
    description: str


RESULT_EVENTS: tuple[ResultEvent, ...] = (
    ResultEvent(
        TAGGED_DETAIL_TYPE,
        TaggedDetail,
        "Published by completion-tagger when a tag request was applied: metadata is the completion's "
        "metadata after the update.",
    ),
    ResultEvent(
        TAG_FAILED_DETAIL_TYPE,
        TagFailedDetail,
        "Published by completion-tagger when a tag request failed for good (retryable false), or on its last "
        "delivery before the dead-letter queue (retryable true).",
    ),
)
RESULT_DETAIL_TYPES: tuple[str, ...] = tuple(event.detail_type for event in RESULT_EVENTS)

# A detail stored before its event went out is saved without its detail type: it is read back as the one
# result model it validates as (their required fields tell them apart).
_STORED_DETAIL: TypeAdapter[ResultDetail] = TypeAdapter(ResultDetail)


def detail_type_of(detail: ResultDetail) -> str:
    """The EventBridge DetailType for a result detail: its model's entry in RESULT_EVENTS (read when called)."""
    for event in RESULT_EVENTS:
        if type(detail) is event.detail:
            return event.detail_type
    raise LookupError(f"{type(detail).__name__}: no entry in RESULT_EVENTS (tagger/result_events.py)")


def detail_from_dict(data: dict[str, Any]) -> ResultDetail:
    """Rebuild a result detail saved by the idempotency store or the completion's record."""
    return _STORED_DETAIL.validate_python(data)
