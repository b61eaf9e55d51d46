"""Powertools' SQS batch processor, run concurrently: one completion's records in order, others in parallel."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from tagger.logic.records import ParsedRecord


class OrderedConcurrentBatchProcessor(BatchProcessor):
    """Processes a batch as chains, one chain per completion, at most `max_concurrency` chains at a time.

    Records of one completion are applied one after another in batch order, so a later merge sees the
    result of an earlier one; records of different completions overlap, so a batch costs about one API
    round trip rather than one per record. Every record is still handled by Powertools' own
    `_process_record`, so partial batch responses work exactly as with `BatchProcessor`.
    """

    def __init__(self, max_concurrency: int, chain_scope: Callable[[], AbstractContextManager[None]]):
        # A batch whose records all failed is still a partial response: raising would not put back
        # anything more, and would hide the per-record outcomes.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._chain_scope = chain_scope
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="record")
        self._parsed: dict[int, ParsedRecord] = {}

    def process(self) -> list[tuple]:  # type: ignore[type-arg]  # Powertools' own annotation
        # Keyed by the raw record's identity: `_process_record` gets the raw record back from Powertools.
        self._parsed = {id(record): ParsedRecord(record, index) for index, record in enumerate(self.records)}
        chains: dict[str, list[int]] = {}
        for index, record in enumerate(self.records):
            chains.setdefault(self._parsed[id(record)].ordering_key, []).append(index)
        futures = [self._pool.submit(self._run_chain, indexes) for indexes in chains.values()]
        results: dict[int, tuple] = {}  # type: ignore[type-arg]
        for future in futures:
            results.update(future.result())
        ordered = [results[index] for index in range(len(self.records))]
        # Powertools' handlers append each outcome as it happens, which across chains is completion order.
        # The partial batch response is built from these lists: restore batch order, as a sequential
        # BatchProcessor would report it, so the response does not depend on thread timing.
        self.success_messages = [entry[2] for entry in ordered if entry[0] == "success"]
        self.fail_messages = [entry[2] for entry in ordered if entry[0] == "fail"]
        return ordered

    def _run_chain(self, indexes: list[int]) -> dict[int, tuple]:  # type: ignore[type-arg]
        with self._chain_scope():
            return {index: self._process_record(self.records[index]) for index in indexes}

    def _to_batch_type(self, record: dict[str, Any], event_type: EventType, model: Any = None) -> ParsedRecord:  # type: ignore[override]
        return self._parsed[id(record)]

    def response(self) -> PartialItemFailureResponse:
        return self.batch_response
