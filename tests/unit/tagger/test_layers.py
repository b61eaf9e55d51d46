"""The function's layers: `logic/` depends on the outside world only through `tagger.ports`.

Adapters may use two pure logic modules, because what crosses the boundary is made of them: a `Deadline`
(and the API's `RateLimitGate`) from `logic.timing`, a completion's `CompletionHistory` from
`logic.key_versions`. Both are leaves (no collaborators, no I/O, nothing of the function but its models),
so importing them pulls neither logic's flow into the adapters nor an adapter into the logic.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TAGGER = Path(__file__).resolve().parents[3] / "functions" / "tagger"
FORBIDDEN_IN_LOGIC = ("tagger.adapters", "tagger.composition", "tagger.app", "httpx", "boto3", "botocore")
LOGIC_ALLOWED_IN_ADAPTERS = ("tagger.logic.timing", "tagger.logic.key_versions", "tagger.logic.completion_record")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute (`from . import x` resolved against the file's package)."""
    package = ".".join(path.relative_to(TAGGER.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def modules(folder: str) -> list[Path]:
    found = sorted((TAGGER / folder).glob("*.py"))
    assert found, folder
    return found


@pytest.mark.parametrize("path", modules("logic"), ids=lambda path: path.name)
def test_logic_reaches_the_outside_world_only_through_ports(path: Path) -> None:
    assert sorted(name for name in imports_of(path) if within(name, FORBIDDEN_IN_LOGIC)) == []


@pytest.mark.parametrize("path", modules("adapters"), ids=lambda path: path.name)
def test_adapters_use_only_the_pure_logic_modules(path: Path) -> None:
    logic = {name for name in imports_of(path) if within(name, ("tagger.logic",))}
    assert sorted(name for name in logic if not within(name, LOGIC_ALLOWED_IN_ADAPTERS)) == []


@pytest.mark.parametrize("module", LOGIC_ALLOWED_IN_ADAPTERS)
def test_the_logic_modules_adapters_may_use_are_leaves(module: str) -> None:
    path = TAGGER.parent.joinpath(*module.split(".")).with_suffix(".py")
    ours = {name for name in imports_of(path) if within(name, ("tagger",))}
    assert sorted(name for name in ours if not within(name, ("tagger.models", *LOGIC_ALLOWED_IN_ADAPTERS))) == []


def test_ports_import_no_adapter() -> None:
    names = imports_of(TAGGER / "ports.py")
    assert sorted(name for name in names if within(name, FORBIDDEN_IN_LOGIC)) == []
