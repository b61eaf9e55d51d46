"""Applies one tag request to its completion through the API (the README's "Modes")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tagger.errors import CompletionsApiError, MergeTooLarge
from tagger.logic.key_versions import CompletionHistory, is_newest_everywhere, resolve
from tagger.logic.metadata_merge import check_key_limit, merge_metadata
from tagger.logic.records import Delivery
from tagger.logic.timing import Deadline
from tagger.models import TagRequest
from tagger.ports import CompletionsApi
from tagger.telemetry import logger


@dataclass(frozen=True)
class Ordering:
    """Where a request stands among the others for its completion: its order token and the history read with
    the completion's lease."""

    token: str
    history: CompletionHistory


@dataclass(frozen=True)
class Applied:
    """The completion's metadata after the request, and the keys a newer request had already won."""

    metadata: dict[str, str]
    superseded: list[str] = field(default_factory=list)


class Tagger:
    """`replace` is one write; `merge` reads, merges, and writes only if something changes.

    On a redelivery a `replace` reads first too: an earlier delivery may have written it already (its
    outcome unknown, or its event lost), and then there is nothing to write again.

    With an `Ordering` (per-completion leases on) a request changes only the keys on which it is the newest
    intent; a `replace` that is newest on every key is still written without a read.

    OpenAI does not document whether its update replaces the metadata or merges into it; this assumes it
    replaces. Each write's answer is compared with what was written, and a difference (a removed key still
    there, a value not as written) is logged and counted through `on_mismatch`; the result event carries
    the API's answer either way.
    """

    def __init__(self, api: CompletionsApi, on_mismatch: Callable[[], None] | None = None):
        self._api = api
        self._on_mismatch = on_mismatch

    def apply(self, delivery: Delivery, ordering: Ordering | None = None) -> Applied:
        """Update the completion. Raises CompletionsApiError when that fails."""
        request, deadline = delivery.request, delivery.deadline
        blind_replace = request.mode == "replace" and not delivery.redelivered
        if blind_replace and (ordering is None or is_newest_everywhere(ordering.token, ordering.history)):
            return Applied(self._write(request.completion_id, request.metadata, deadline))
        current = _metadata_of(self._api.retrieve(request.completion_id, deadline))
        if ordering is not None:
            resolution = resolve(request, ordering.token, ordering.history, current)
            target, superseded = resolution.metadata, resolution.superseded
        else:
            target, superseded = self._unordered_target(request, current), []
        try:
            check_key_limit(current, target)
        except MergeTooLarge as error:
            raise CompletionsApiError("invalid_request", str(error), retryable=False) from None
        if target == current:
            return Applied(current, superseded)
        return Applied(self._write(request.completion_id, target, deadline), superseded)

    def read(self, completion_id: str, deadline: Deadline) -> dict[str, str]:
        """The completion's current metadata (to settle what an earlier holder's write did)."""
        return _metadata_of(self._api.retrieve(completion_id, deadline))

    @staticmethod
    def _unordered_target(request: TagRequest, current: dict[str, str]) -> dict[str, str]:
        if request.mode == "replace":
            return dict(request.metadata)
        return merge_metadata(current, request.metadata, request.remove)

    def _write(self, completion_id: str, metadata: dict[str, str], deadline: Deadline) -> dict[str, str]:
        answer = _metadata_of(self._api.update_metadata(completion_id, metadata, deadline))
        if answer != metadata:
            self._report_mismatch(completion_id, metadata, answer)
        return answer

    def _report_mismatch(self, completion_id: str, written: dict[str, str], answer: dict[str, str]) -> None:
        logger.warning(
            "the API's answer differs from the metadata written",
            extra={
                "completion_id": completion_id,
                "keys_not_written": sorted(answer.keys() - written.keys()),
                "keys_missing": sorted(written.keys() - answer.keys()),
                "keys_changed": sorted(key for key in written.keys() & answer.keys() if written[key] != answer[key]),
            },
        )
        if self._on_mismatch:
            self._on_mismatch()


def _metadata_of(completion: dict[str, Any]) -> dict[str, str]:
    metadata = completion.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CompletionsApiError(
            "upstream_error", "OpenAI API returned metadata that is not an object", retryable=True
        )
    return {str(key): str(value) for key, value in metadata.items()}
