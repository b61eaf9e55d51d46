"""Every IaC scanner finding the template skips is explained twice: inline, and in docs/deploying.md, "Security".

`make scan` runs checkov and cfn-lint's serverless rules and fails on any finding not skipped; this keeps the
skips themselves honest.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure._template import REPO_ROOT

pytestmark = pytest.mark.infrastructure

CHECKOV_ID = re.compile(r"^CKV2?_AWS_\d+$")
SERVERLESS_RULE_ID = re.compile(r"^[EW]S\d{4}$")  # cfn-lint-serverless; cfn-lint's own rules are never ignored


def security_section() -> str:
    page = (REPO_ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")
    start = page.index("\n## Security\n")
    end = page.find("\n## ", start + 1)
    return page[start : end if end != -1 else None]


def skips(resources: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Logical id -> [(check id, reason)]; cfn-lint ignores carry their reason as a YAML comment, so ''."""
    found: dict[str, list[tuple[str, str]]] = {}
    for logical_id, resource in resources.items():
        metadata = resource.get("Metadata", {})
        for skip in metadata.get("checkov", {}).get("skip", []):
            found.setdefault(logical_id, []).append((skip["id"], skip.get("comment", "")))
        for check in metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
            found.setdefault(logical_id, []).append((check, ""))
    return found


def test_checkov_skips_give_their_reason(resources: dict[str, Any]) -> None:
    for logical_id, entries in skips(resources).items():
        for check, reason in entries:
            if CHECKOV_ID.match(check):
                assert len(reason) > 40, f"{logical_id}: {check} needs a reason"


def test_only_serverless_rules_or_checkov_checks_are_skipped(resources: dict[str, Any]) -> None:
    checks = {check for entries in skips(resources).values() for check, _ in entries}
    assert checks, "the template documents its skips"
    assert all(CHECKOV_ID.match(check) or SERVERLESS_RULE_ID.match(check) for check in checks), checks


def test_the_security_section_lists_every_skip_with_its_resource(resources: dict[str, Any]) -> None:
    section = security_section()
    for logical_id, entries in skips(resources).items():
        for check, _ in entries:
            rows = [line for line in section.splitlines() if f"`{check}`" in line]
            assert rows, f"docs/deploying.md, Security: {check} is not listed"
            assert any(f"`{logical_id}`" in row for row in rows), (
                f"docs/deploying.md, Security: {check} on {logical_id}"
            )


def test_cfn_lint_ignores_carry_a_comment_in_the_template(resources: dict[str, Any]) -> None:
    text = (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")
    for entries in skips(resources).values():
        for check, _ in entries:
            if SERVERLESS_RULE_ID.match(check):
                assert re.search(rf"#\s*{check}\b", text), f"template.yaml: say why {check} is ignored"
