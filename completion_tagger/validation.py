"""Each request is judged by the function's own parser and models, so the sender and the function can
never disagree about what a valid tag request is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from completion_tagger.requests import Line
from completion_tagger.stamping import IssuedAtStamps
from tagger.errors import InvalidTagRequest
from tagger.logic.parsing import parse_tag_request
from tagger.models import MAX_REQUEST_ID_LENGTH

# Room for "-" and a line number of up to 12 digits within the request id's limit.
MAX_REQUEST_ID_PREFIX_LENGTH = MAX_REQUEST_ID_LENGTH - 13


@dataclass(frozen=True)
class Outgoing:
    """A valid request ready to send: the message body and the `request_id` it carries."""

    number: int
    body: str
    request_id: str


@dataclass(frozen=True)
class Rejected:
    """A request that was not sent, and why (a validation message naming the field, or the send error)."""

    number: int
    reason: str


def validate(line: Line, request_id_prefix: str, stamps: IssuedAtStamps | None = None) -> Outgoing | Rejected:
    """The message body for `line`, with `request_id` set to `<prefix>-<line number>` unless it has one,
    and `issued_at` set from `stamps` unless it has one (the line's own is kept).

    The body is the request as the function's model reads it, serialized with every non-ASCII
    character escaped, so SQS's character rules can never refuse it. A line that is an EventBridge
    event whose `detail` is a request is accepted like the function accepts it, and its request sent.
    """
    if line.problem is not None:
        return Rejected(line.number, line.problem)
    try:
        request = parse_tag_request(line.text)
    except InvalidTagRequest as error:
        return Rejected(line.number, error.message)
    if request.request_id is None:
        request = request.model_copy(update={"request_id": f"{request_id_prefix}-{line.number}"})
    if request.issued_at is None and stamps is not None:
        request = request.model_copy(update={"issued_at": stamps.next()})
    body = json.dumps(request.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
    return Outgoing(line.number, body, str(request.request_id))


def check_request_id_prefix(prefix: str) -> str:
    """A prefix leaves room for `-<line number>` within the request id's limit; raises ValueError if not."""
    if not prefix or len(prefix) > MAX_REQUEST_ID_PREFIX_LENGTH:
        raise ValueError(f"request id prefix: 1 to {MAX_REQUEST_ID_PREFIX_LENGTH} characters, got {len(prefix)}")
    return prefix
