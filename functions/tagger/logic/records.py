"""The SQS record as the function handles it: Powertools' `SQSRecord`, with its body read once, its identity
and its order; and the `Delivery` of its request that the layers below the record handler work on."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tagger.errors import InvalidTagRequest
from tagger.logic.key_versions import order_token
from tagger.logic.parsing import read_body
from tagger.logic.timing import Deadline
from tagger.models import TagRequest
from tagger.ports import COPY_GENERATION, ORIGINAL_MESSAGE_ID, ORIGINAL_SENT_TIMESTAMP


class ParsedRecord(SQSRecord):
    """A record whose body has been read: its tag request (or why it is not one), its chain, its identity
    and its order token.

    The batch processor builds one per record, orders the batch by `ordering_key`, and hands the same
    object to the record handler, so no body is read twice.
    """

    def __init__(self, data: dict[str, Any], position: int):
        super().__init__(data)
        # A hand-made record may lack a message id; its position in the batch then names its chain.
        own_id = str(data.get("messageId", position))
        attributes = data.get("messageAttributes") or {}
        # The message id events and idempotency decisions use: the original's for a re-queued copy.
        self.identity = _string_attribute(attributes, ORIGINAL_MESSAGE_ID) or own_id
        self.sent_timestamp_ms = _sent_timestamp_ms(data, attributes)
        # 0 for a producer's message; n for the n-th re-queued copy of it.
        generation = _string_attribute(attributes, COPY_GENERATION) or "0"
        self.copy_generation = int(generation) if generation.isdigit() else 0
        read = read_body(str(data.get("body", "")), own_id, self.sent_timestamp_ms)
        self.request: TagRequest | InvalidTagRequest = read.request
        self.ordering_key = read.ordering_key

    @property
    def order_token(self) -> str:
        """The request's order: its `issued_at` where it has one, else its SentTimestamp; ties by identity."""
        issued = self.request.issued_at_micros() if isinstance(self.request, TagRequest) else None
        return order_token(issued if issued is not None else self.sent_timestamp_ms * 1000, self.identity)

    def correlation_ids(self) -> tuple[str | None, str | None]:
        """Completion and request ids for a failure event: the request's, or those an invalid body carried."""
        return self.request.completion_id, self.request.request_id


@dataclass(frozen=True)
class Delivery:
    """One delivery of a valid tag request: everything about it that the unit of work, the leased apply and
    the tagger need, built once per record by the record handler and passed down whole."""

    request: TagRequest
    # The record's identity: the original's message id for a re-queued copy.
    message_id: str
    order_token: str
    receive_count: int
    # The queue dead-letters the message after this delivery unless it is put back as a copy.
    is_last: bool
    deadline: Deadline

    @property
    def redelivered(self) -> bool:
        """An earlier delivery may have written already (its outcome unknown, or its event lost)."""
        return self.receive_count > 1


def _string_attribute(attributes: dict[str, Any], name: str) -> str | None:
    attribute = attributes.get(name)
    value = attribute.get("stringValue") if isinstance(attribute, dict) else None
    return str(value) if value else None


def _sent_timestamp_ms(data: dict[str, Any], attributes: dict[str, Any]) -> int:
    """The original's SentTimestamp for a copy; else SQS's. A record without one (hand-made) counts as sent now."""
    for value in (
        _string_attribute(attributes, ORIGINAL_SENT_TIMESTAMP),
        (data.get("attributes") or {}).get("SentTimestamp"),
    ):
        if value and str(value).isdigit():
            return int(value)
    return int(time.time() * 1000)
