"""PutEvents entries for result events: built small, and sized the way EventBridge sizes them.

EventBridge bills and limits by *entry size* (its guide, "Calculating Amazon EventBridge PutEvents event
entry size"): 14 bytes for `Time` when given, plus the UTF-8 bytes of `Source`, `DetailType`, `Detail` and
each of `Resources`; `EventBusName` does not count. A PutEvents request may carry at most 256 KB of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tagger.models import ResultDetail, TaggedDetail
from tagger.result_events import detail_type_of
from tagger.telemetry import logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

MAX_CALL_ENTRY_BYTES = 256 * 1024  # PutEvents' request limit, in entry size: a call must stay under it
TIME_ENTRY_BYTES = 14
# A detail stays well under 64 KB (README, "Result events"), EventBridge's billing unit. Metadata of 16 keys
# of 64 + 512 four-byte characters is about 37 KB; what a request names beyond that can only be `superseded`
# keys, which the event may list in part, so that list is shortened to fit.
MAX_DETAIL_BYTES = 48 * 1024


def result_entry(detail: ResultDetail, source: str, bus_name: str) -> PutEventsRequestEntryTypeDef:
    """The PutEvents entry of a result event, its detail kept within MAX_DETAIL_BYTES where it can be."""
    return {
        "Source": source,
        "DetailType": detail_type_of(detail),
        "Detail": bounded_detail_json(detail),
        "EventBusName": bus_name,
    }


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge computes it against the request limit."""
    size = TIME_ENTRY_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += len(str(entry[name]).encode("utf-8"))
    for resource in entry.get("Resources") or []:
        size += len(str(resource).encode("utf-8"))
    return size


def bounded_detail_json(detail: ResultDetail) -> str:
    """The detail as JSON; over MAX_DETAIL_BYTES, a `CompletionTagged` lists only as many superseded keys as fit.

    Everything else in a detail is bounded by the request's limits (16 keys of 64 + 512 characters, ids of
    at most 128 characters, error messages of at most 1,000), so nothing else needs cutting.
    """
    text = detail.model_dump_json()
    if _size(text) <= MAX_DETAIL_BYTES or not isinstance(detail, TaggedDetail) or not detail.superseded:
        return text
    keys = detail.superseded
    fitting, too_many = 0, len(keys)  # the longest prefix that fits, by bisection
    while too_many - fitting > 1:
        middle = (fitting + too_many) // 2
        if _size(_with_superseded(detail, keys[:middle])) <= MAX_DETAIL_BYTES:
            fitting = middle
        else:
            too_many = middle
    logger.warning(
        "superseded keys left out of a result event to keep it small",
        extra={"message_id": detail.message_id, "superseded": len(keys), "listed": fitting},
    )
    return _with_superseded(detail, keys[:fitting])


def _with_superseded(detail: TaggedDetail, keys: list[str]) -> str:
    return detail.model_copy(update={"superseded": keys}).model_dump_json()


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
