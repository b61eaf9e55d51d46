"""Applies one tag request to its completion through the API (the contract's modes, §1)."""

from __future__ import annotations

from typing import Any

from tagger.api_errors import ApiError
from tagger.metadata_merge import MergeTooLarge, merge_metadata
from tagger.models import TagRequest
from tagger.openai_client import CompletionsApi
from tagger.timing import Deadline


class Tagger:
    """`replace` is one write; `merge` reads, merges, and writes only if something changes.

    On a redelivery a `replace` reads first too: an earlier delivery may have written it already (its
    outcome unknown, or its event lost), and then there is nothing to write again.
    """

    def __init__(self, api: CompletionsApi):
        self._api = api

    def apply(self, request: TagRequest, deadline: Deadline, *, redelivered: bool = False) -> dict[str, str]:
        """Update the completion; returns its metadata afterwards. Raises ApiError when that fails."""
        if request.mode == "replace" and not redelivered:
            return _metadata_of(self._api.update_metadata(request.completion_id, request.metadata, deadline))
        current = _metadata_of(self._api.retrieve(request.completion_id, deadline))
        if request.mode == "replace":
            if current == request.metadata:
                return current
            return _metadata_of(self._api.update_metadata(request.completion_id, request.metadata, deadline))
        try:
            merged = merge_metadata(current, request.metadata, request.remove)
        except MergeTooLarge as error:
            raise ApiError("invalid_request", str(error), retryable=False) from None
        if merged == current:
            return current
        return _metadata_of(self._api.update_metadata(request.completion_id, merged, deadline))


def _metadata_of(completion: dict[str, Any]) -> dict[str, str]:
    metadata = completion.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError("upstream_error", "OpenAI API returned metadata that is not an object", retryable=True)
    return {str(key): str(value) for key, value in metadata.items()}
