"""Batch order per completion when a record goes back: the later records of its chain go back behind it.

A completion's records are applied in batch order (see `batch.py`). If one of them is put back, applying a
later one now would apply it before the earlier one, so the later ones are put back too, unstarted, for
the same reason and with the same delay.
"""

from __future__ import annotations

import threading

from tagger.errors import PutBack


class HoldBack:
    """Per invocation: the first put-back of each chain. Thread-safe (chains run on worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[str, PutBack] = {}

    def check(self, chain: str) -> None:
        """Raise PutBack if an earlier record of this chain was put back."""
        with self._lock:
            earlier = self._first.get(chain)
        if earlier is not None:
            raise PutBack(
                earlier.code,
                "not started: an earlier request for this completion in the batch was put back",
                status=earlier.status,
                retry_after=earlier.retry_after,
                cause=earlier.cause,
            )

    def put_back(self, chain: str, put_back: PutBack) -> None:
        """Note that a record of this chain went back; the first reason is the one its followers carry."""
        with self._lock:
            self._first.setdefault(chain, put_back)
