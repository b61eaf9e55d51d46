"""A moved message keeps its order: one without `issued_at` gets its original SentTimestamp as `issued_at`.

A request's order is its `issued_at`, else its message's SentTimestamp (README, "Tag requests"). A
redriven message is a new message with a new SentTimestamp, so without this an old request brought
back from the dead-letter queue would count as newer than everything sent since, and could undo it.
The client-side move writes the dead-lettered message's SentTimestamp into the body (into `detail` for
an EventBridge event) before sending it; a body that is not a JSON object is moved unchanged (the
function reports it as invalid either way). SQS's own message-move task cannot rewrite bodies: producers
that care about order across redrives set `issued_at` themselves (`completion-tagger send` always does).
"""

from __future__ import annotations

import json
from typing import Any

from tagger.logic.parsing import ENVELOPE_FIELDS
from tagger.models import format_issued_at


def with_issued_at(body: str, sent_timestamp_ms: str | None) -> str:
    """`body` with `issued_at` set to the SentTimestamp (epoch milliseconds) where it has none."""
    if not sent_timestamp_ms or not sent_timestamp_ms.isdigit():
        return body
    try:
        document: Any = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict):
        return body
    is_envelope = all(field in document for field in ENVELOPE_FIELDS)
    request = document["detail"] if is_envelope else document
    if not isinstance(request, dict) or request.get("issued_at") is not None:
        return body
    request["issued_at"] = format_issued_at(int(sent_timestamp_ms) * 1000)
    return json.dumps(document, separators=(",", ":"))
