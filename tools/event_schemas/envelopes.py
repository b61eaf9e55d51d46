"""The EventBridge events the product receives and publishes, as pydantic models.

Powertools' `EventBridgeModel` describes the envelope every EventBridge event has (version, id, source,
account, time, region, resources, detail-type, detail); each event narrows `detail-type` and `detail`.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import Field

from tagger.models import TagFailedDetail, TaggedDetail, TagRequest


class CompletionTagRequested(EventBridgeModel):
    """An upstream tag request put on the bus; the stack's rule routes it into the tag-request queue."""

    detail_type: Literal["CompletionTagRequested"] = Field(alias="detail-type")
    detail: TagRequest


class CompletionTagged(EventBridgeModel):
    """Published when a tag request was applied (or was already in effect)."""

    detail_type: Literal["CompletionTagged"] = Field(alias="detail-type")
    detail: TaggedDetail


class CompletionTagFailed(EventBridgeModel):
    """Published when a tag request failed for good, or on its last delivery before the dead-letter queue."""

    detail_type: Literal["CompletionTagFailed"] = Field(alias="detail-type")
    detail: TagFailedDetail
