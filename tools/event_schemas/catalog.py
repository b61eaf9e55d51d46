"""Which schemas the product publishes: the file under schemas/, the registry's schema name, the template resource."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from event_schemas.draft4 import to_draft4
from event_schemas.envelopes import CompletionTagRequested, result_envelope
from tagger.models import TagRequest
from tagger.result_events import RESULT_EVENTS, ResultEvent

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


@dataclass(frozen=True)
class EventSchema:
    """One published schema and where it lives."""

    file_name: str
    schema_name: str  # SchemaName in the EventBridge schema registry
    resource: str  # logical id of its AWS::EventSchemas::Schema in template.yaml
    description: str
    model: type[BaseModel]
    # Requests are described as the function validates them, events as the function writes them.
    mode: Literal["validation", "serialization"]

    @property
    def path(self) -> Path:
        return SCHEMAS_DIR / self.file_name

    def document(self) -> dict[str, Any]:
        return to_draft4(self.model.model_json_schema(mode=self.mode), self.schema_name, self.description)


# The registry's schema name of a result event: the events the function publishes, under its name.
RESULT_SCHEMA_PREFIX = "completion-tagger@"


def _kebab_case(name: str) -> str:
    """`CompletionTagFailed` -> `completion-tag-failed`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def result_event_schema(event: ResultEvent) -> EventSchema:
    """A result event's published schema: `completion-tag-failed.json`, `completion-tagger@CompletionTagFailed`,
    resource `CompletionTagFailedSchema` (which template.yaml must declare), envelope and detail."""
    return EventSchema(
        f"{_kebab_case(event.detail_type)}.json",
        f"{RESULT_SCHEMA_PREFIX}{event.detail_type}",
        f"{event.detail_type}Schema",
        event.description,
        result_envelope(event),
        "serialization",
    )


SCHEMAS = (
    EventSchema(
        "tag-request.json",
        "TagRequest",
        "TagRequestSchema",
        "A tag request: the body of a message on the tag-request queue, and the detail of a "
        "CompletionTagRequested event. Also rejected: remove with mode replace, a merge that sets and removes "
        "nothing, a key both set and removed.",
        TagRequest,
        "validation",
    ),
    EventSchema(
        "completion-tag-requested.json",
        "CompletionTagRequested",
        "CompletionTagRequestedSchema",
        "An upstream EventBridge event whose detail is a tag request; the stack's rule routes it into the "
        "tag-request queue.",
        CompletionTagRequested,
        "validation",
    ),
    *(result_event_schema(event) for event in RESULT_EVENTS),
)
