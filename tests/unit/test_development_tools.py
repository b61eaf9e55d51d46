"""`run` and `local-openai` in an install without the development tools: one line, not a traceback."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from completion_tagger.cli import cli
from completion_tagger.development_tools import MISSING_TOOLS, development_tools


@pytest.mark.parametrize(
    ("subcommand", "tool_module"), [("run", "local_stack.cli"), ("local-openai", "local_openai.__main__")]
)
def test_a_subcommand_whose_tool_is_missing_says_where_to_run_it(
    monkeypatch: pytest.MonkeyPatch, subcommand: str, tool_module: str
) -> None:
    monkeypatch.setitem(sys.modules, tool_module, None)  # importing it raises ModuleNotFoundError

    result = CliRunner().invoke(cli, [subcommand])

    assert result.exit_code == 1
    assert result.output == f"Error: {MISSING_TOOLS}\n"


def test_a_module_missing_for_another_reason_is_not_hidden() -> None:
    with pytest.raises(ModuleNotFoundError), development_tools():
        raise ModuleNotFoundError("no module named 'moto'", name="moto")
