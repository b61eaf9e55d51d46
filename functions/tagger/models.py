"""Pydantic models of the product's outside: tag requests in, result events out (README: "Tag requests", "Result
events")."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

MAX_METADATA_KEYS = 16
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 512
MAX_REQUEST_ID_LENGTH = 128
MAX_REMOVED_KEYS = 64
# RFC 3339 in UTC, at most microsecond precision: `2026-12-04T15:12:38.913456Z` (README, "Tag requests").
ISSUED_AT_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")

CompletionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)]
Mode = Literal["merge", "replace"]
ErrorCode = Literal[
    "validation_error",
    "not_found",
    "invalid_request",
    "unauthorized",
    "rate_limited",
    "quota_exceeded",
    "upstream_error",
    "timeout",
    "connection_error",
]

TAGGED_DETAIL_TYPE = "CompletionTagged"
TAG_FAILED_DETAIL_TYPE = "CompletionTagFailed"


class TagRequest(BaseModel):
    """One tag request. Strict: values must already be strings, and unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    completion_id: CompletionId
    metadata: dict[MetadataKey, MetadataValue] = Field(max_length=MAX_METADATA_KEYS)
    mode: Mode = "merge"
    remove: list[MetadataKey] = Field(default_factory=list, max_length=MAX_REMOVED_KEYS)
    request_id: Annotated[str, StringConstraints(max_length=MAX_REQUEST_ID_LENGTH)] | None = None
    # When the producer decided this request: it orders requests for one completion, and is not part of
    # the idempotency key (the same tags decided twice are the same request).
    issued_at: str | None = None

    @field_validator("issued_at")
    @classmethod
    def _issued_at_is_utc_rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            issued_at_instant(value)
        return value

    @field_validator("remove")
    @classmethod
    def _remove_is_a_set(cls, keys: list[str]) -> list[str]:
        """Removal has set semantics: order and repeats carry no meaning, so they don't change the key."""
        return sorted(set(keys))

    @model_validator(mode="after")
    def _mode_rules(self) -> TagRequest:
        if self.mode == "replace" and self.remove:
            raise ValueError("remove: not allowed with mode 'replace' (replace already drops unlisted keys)")
        if self.mode == "merge" and not self.metadata and not self.remove:
            raise ValueError("metadata: a merge must set at least one key or remove at least one key")
        both = sorted(set(self.remove) & self.metadata.keys())
        if both:
            raise ValueError(f"remove: keys {both} are also set in metadata; a key is either set or removed")
        return self

    def hashed_fields(self) -> dict[str, object]:
        """What the request asks for, the content of its idempotency key. A field added here only when set
        leaves the key of every request without it, and so every stored record, as it was."""
        return {"mode": self.mode, "metadata": self.metadata, "remove": self.remove}

    def request_hash(self) -> str:
        """SHA-256 of the canonical JSON (sorted keys) of what the request asks for (README, "Tag requests")."""
        canonical = json.dumps(
            self.hashed_fields(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def issued_at_micros(self) -> int | None:
        """`issued_at` as microseconds since the epoch, or None when the producer did not set it."""
        return None if self.issued_at is None else to_micros(issued_at_instant(self.issued_at))

    def idempotency_payload(self) -> dict[str, str]:
        """The completion id plus the request hash: the same tags in another key order are the same request."""
        return {"completion_id": self.completion_id, "request_sha256": self.request_hash()}


def issued_at_instant(value: str) -> datetime:
    """Parse an `issued_at` value; raises ValueError naming the field and the expected form."""
    if not ISSUED_AT_PATTERN.match(value):
        raise ValueError(
            "issued_at: must be an RFC 3339 UTC timestamp with at most microsecond precision, "
            "such as 2026-12-04T15:12:38.913456Z"
        )
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"issued_at: not a valid date and time ({value!r})") from None


def to_micros(instant: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    delta = instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_issued_at(micros: int) -> str:
    """The `issued_at` form of an instant given in microseconds since the epoch (microsecond precision)."""
    seconds, fraction = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:06d}Z"


class EventBridgeEnvelope(BaseModel):
    """An EventBridge event delivered to the queue by a rule; its `detail` is the tag request."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    source: str
    detail: TagRequest


class ErrorInfo(BaseModel):
    """Why a request failed, in the result event."""

    code: ErrorCode
    message: str
    retryable: bool
    status: int | None = None


class TaggedDetail(BaseModel):
    """Detail of a `CompletionTagged` event: the completion's metadata after the update.

    `superseded` lists the keys this request named but left alone because a newer request had already
    set or removed them; it is left out of the event when there are none.
    """

    completion_id: str
    metadata: dict[str, str]
    mode: Mode
    request_id: str | None
    message_id: str
    superseded: list[str] | None = Field(default=None, exclude_if=lambda keys: not keys)


class TagFailedDetail(BaseModel):
    """Detail of a `CompletionTagFailed` event."""

    completion_id: str | None
    request_id: str | None
    message_id: str
    error: ErrorInfo


# Every result event's detail; each has its entry in `result_events.RESULT_EVENTS`.
ResultDetail = TaggedDetail | TagFailedDetail
