"""Thread-safe in-memory store of chat completions and their request messages.

Everything handed out is a deep copy, so callers can never mutate stored state outside the lock.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from local_openai.error_responses import invalid_request
from local_openai.paging import PageParams

SortKey = tuple[int, int]


@dataclass
class _Record:
    completion: dict[str, Any]
    messages: list[dict[str, Any]]
    key: SortKey  # (created, insertion sequence): the order of list results


class CompletionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        # Sort keys of every id ever stored, deleted ones included, so that a client deleting the
        # completions it pages through can still pass the last (now deleted) id as ``after``.
        self._cursor_keys: dict[str, SortKey] = {}
        self._sequence = itertools.count()

    def put(self, completion: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Store (or replace) a completion; returns a copy of what was stored."""
        completion = copy.deepcopy(completion)
        record = _Record(completion, copy.deepcopy(messages), (int(completion["created"]), 0))
        with self._lock:
            record.key = (record.key[0], next(self._sequence))
            self._records[completion["id"]] = record
            self._cursor_keys[completion["id"]] = record.key
            return copy.deepcopy(completion)

    def get(self, completion_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(completion_id)
            return copy.deepcopy(record.completion) if record else None

    def messages(self, completion_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            record = self._records.get(completion_id)
            return copy.deepcopy(record.messages) if record else None

    def replace_metadata(self, completion_id: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        """Replace the whole metadata map (what the API is taken to do); None when unknown."""
        return self.update_metadata(completion_id, lambda _: dict(metadata))

    def update_metadata(
        self, completion_id: str, change: Callable[[dict[str, str]], dict[str, str]]
    ) -> dict[str, Any] | None:
        """Set the metadata to `change(current)`, atomically; None when unknown. `change` may raise."""
        with self._lock:
            record = self._records.get(completion_id)
            if record is None:
                return None
            record.completion["metadata"] = change(dict(record.completion.get("metadata") or {}))
            return copy.deepcopy(record.completion)

    def delete(self, completion_id: str) -> bool:
        with self._lock:
            return self._records.pop(completion_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._cursor_keys.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def list(
        self, *, model: str | None, metadata: Sequence[tuple[str, str]], page: PageParams
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of stored completions matching ``model`` and every ``metadata`` pair.

        Returns the page and whether more matching completions follow it.
        """
        with self._lock:
            cursor: SortKey | None = None
            if page.after is not None:
                cursor = self._cursor_keys.get(page.after)
                if cursor is None:
                    raise invalid_request(
                        f"Invalid 'after': no chat completion found with id '{page.after}'.",
                        param="after",
                        code="invalid_value",
                    )
            descending = page.order == "desc"
            matches = [
                record
                for record in self._records.values()
                if (model is None or record.completion["model"] == model)
                and all(record.completion["metadata"].get(k) == v for k, v in metadata)
                and (cursor is None or (record.key < cursor if descending else record.key > cursor))
            ]
            matches.sort(key=lambda record: record.key, reverse=descending)
            selected = [copy.deepcopy(record.completion) for record in matches[: page.limit]]
            return selected, len(matches) > page.limit
