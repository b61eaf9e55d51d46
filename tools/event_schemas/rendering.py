"""The schema files' text, and the template's copies of them.

CloudFormation takes a schema's content only inline, so template.yaml carries each schema as one line of
compact JSON in the `Content` of its AWS::EventSchemas::Schema; these functions write and read that line.
"""

from __future__ import annotations

import json
import re
from typing import Any

CONTENT_INDENT = " " * 8


def file_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def content_text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _content_line(template: str, resource: str) -> re.Match[str]:
    """The line after `Content: |` of `resource` (a two-space-indented logical id)."""
    pattern = re.compile(
        rf"^  {re.escape(resource)}:\n(?:(?:    .*)?\n)*?      Content: \|\n(?P<line>{CONTENT_INDENT}.*)$",
        re.MULTILINE,
    )
    match = pattern.search(template)
    if match is None:
        raise LookupError(f"template.yaml: no `Content: |` block in resource {resource}")
    return match


def template_content(template: str, resource: str) -> str:
    """The JSON text the template holds for `resource`."""
    return _content_line(template, resource)["line"].strip()


def with_template_content(template: str, resource: str, document: dict[str, Any]) -> str:
    """`template` with `resource`'s content replaced by `document`."""
    match = _content_line(template, resource)
    start, end = match.span("line")
    return template[:start] + CONTENT_INDENT + content_text(document) + template[end:]
