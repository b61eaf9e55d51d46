"""The EventBridge events the product receives and publishes, as pydantic models.

Powertools' `EventBridgeModel` describes the envelope every EventBridge event has (version, id, source,
account, time, region, resources, detail-type, detail); each event narrows `detail-type` and `detail`.
The result events' envelopes are made from the function's registry of them (`tagger.result_events`).
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import Field, create_model

from tagger.models import TagRequest
from tagger.result_events import ResultEvent


class CompletionTagRequested(EventBridgeModel):
    """An upstream tag request put on the bus; the stack's rule routes it into the tag-request queue."""

    detail_type: Literal["CompletionTagRequested"] = Field(alias="detail-type")
    detail: TagRequest


def result_envelope(event: ResultEvent) -> type[EventBridgeModel]:
    """The envelope of a result event: `detail-type` is its DetailType, `detail` its detail model."""
    # Built at run time from the registry's string, so typed as what it is to pydantic: an annotation.
    detail_type: Any = Literal[event.detail_type]
    return create_model(
        event.detail_type,
        __base__=EventBridgeModel,
        detail_type=(detail_type, Field(alias="detail-type")),
        detail=(event.detail, ...),
    )
