"""Which Python the Makefile builds the venvs with."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifact import pythons

REPO_ROOT = Path(__file__).resolve().parents[4]


def test_the_runtime_python_is_the_templates_runtime() -> None:
    template = (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")
    assert "Runtime: python{}.{}\n".format(*pythons.RUNTIME) in template


def test_a_machine_without_the_runtime_python_uses_the_newest_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {(3, 11): "/opt/python3.11", (3, 12): "/opt/python3.12"}
    monkeypatch.setattr(pythons, "find", found.get)
    assert pythons.choose() == ("/opt/python3.12", None)
    found[pythons.RUNTIME] = "/opt/python3.13"
    assert pythons.choose() == ("/opt/python3.13", "/opt/python3.13")
    monkeypatch.setenv("RUNTIME_PYTHON", "-")
    assert pythons.runtime_python() is None
