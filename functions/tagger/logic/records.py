"""The SQS record as the function handles it: Powertools' `SQSRecord`, with its body read once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tagger.errors import InvalidTagRequest
from tagger.logic.parsing import read_body
from tagger.models import TagRequest


class ParsedRecord(SQSRecord):
    """A record whose body has been read: its tag request (or why it is not one) and its chain.

    The batch processor builds one per record, orders the batch by `ordering_key`, and hands the same
    object to the record handler, so no body is read twice.
    """

    def __init__(self, data: dict[str, Any], position: int):
        super().__init__(data)
        # A hand-made record may lack a message id; its position in the batch then names its chain.
        read = read_body(str(data.get("body", "")), str(data.get("messageId", position)))
        self.request: TagRequest | InvalidTagRequest = read.request
        self.ordering_key = read.ordering_key

    def correlation_ids(self) -> tuple[str | None, str | None]:
        """Completion and request ids for a failure event: the request's, or those an invalid body carried."""
        return self.request.completion_id, self.request.request_id
