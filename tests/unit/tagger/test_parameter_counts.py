"""No function of the Lambda function takes more than a handful of parameters.

Facts that travel together travel as one object (a record's `Delivery`, the service's `ServiceParts`, an
exception's fields), so a newcomer adding one does not thread it through every signature on the way down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
MAX_PARAMETERS = 5


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Every parameter a caller may pass, keyword-only and `*args`/`**kwargs` included, `self`/`cls` not."""
    arguments = node.args
    names = [argument.arg for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    names += [f"*{argument.arg}" for argument in (arguments.vararg,) if argument]
    names += [f"**{argument.arg}" for argument in (arguments.kwarg,) if argument]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def sources() -> list[Path]:
    found = sorted(FUNCTIONS.rglob("*.py"))
    assert found
    return found


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(FUNCTIONS)))
def test_no_function_takes_more_than_five_parameters(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    too_many = [
        f"{node.name} (line {node.lineno}): {', '.join(parameters(node))}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and len(parameters(node)) > MAX_PARAMETERS
    ]
    assert too_many == []
