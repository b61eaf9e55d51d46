"""`make help` (the default goal) lists every target of the Makefile with what it does."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infrastructure

REPO_ROOT = Path(__file__).resolve().parents[2]
# A rule's target at the start of a line; variables (upper case, `:=`) and special targets (`.PHONY`) are not.
TARGET = re.compile(r"^([a-z][a-z0-9-]*):(?!=)", re.MULTILINE)


def makefile_targets() -> list[str]:
    return TARGET.findall((REPO_ROOT / "Makefile").read_text(encoding="utf-8"))


def described_targets(*goals: str) -> dict[str, str]:
    """Target and description of each line of `make help`'s list (continuation lines have no target)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), *goals],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = (line.split(maxsplit=1) for line in done.stdout.splitlines() if line.startswith("  ") and line[2] != " ")
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_the_makefile_has_targets_to_list() -> None:
    assert {"help", "run", "test", "unit", "build", "clean"} <= set(makefile_targets())


def test_make_help_lists_every_target_with_a_description() -> None:
    listed = described_targets("help")
    for target in makefile_targets():
        assert listed.get(target), f"{target}: no `## {target}: ...` line above it in the Makefile"


def test_make_alone_prints_the_help() -> None:
    assert described_targets() == described_targets("help")
