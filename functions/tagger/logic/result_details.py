"""The result event detail of a delivery whose request was attempted: tagged when the API applied it, failed
when the API refused it for good (README, "Result events")."""

from __future__ import annotations

from tagger.errors import CompletionsApiError
from tagger.logic.records import Delivery
from tagger.logic.tagging import Applied
from tagger.models import TagFailedDetail, TaggedDetail


def tagged_detail(delivery: Delivery, applied: Applied) -> TaggedDetail:
    """The `CompletionTagged` detail: the completion's metadata after the request, and the keys it left alone."""
    request = delivery.request
    return TaggedDetail(
        completion_id=request.completion_id,
        metadata=applied.metadata,
        mode=request.mode,
        request_id=request.request_id,
        message_id=delivery.message_id,
        superseded=applied.superseded or None,
    )


def failed_detail(delivery: Delivery, error: CompletionsApiError) -> TagFailedDetail:
    """The `CompletionTagFailed` detail of an API error that no retry can fix."""
    request = delivery.request
    return TagFailedDetail(
        completion_id=request.completion_id,
        request_id=request.request_id,
        message_id=delivery.message_id,
        error=error.info(),
    )
