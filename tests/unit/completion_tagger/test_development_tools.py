"""`run` and `local-openai` in an install without the development tools: one line, not a traceback."""

from __future__ import annotations

import re
import sys

import pytest
from click.testing import CliRunner

from completion_tagger.cli import cli
from completion_tagger.development_tools import MISSING_TOOLS, development_tools


@pytest.mark.parametrize(
    ("subcommand", "tool_module"), [("run", "local_stack.commands"), ("local-openai", "local_openai.serve_command")]
)
def test_a_subcommand_whose_tool_is_missing_says_where_to_run_it(
    monkeypatch: pytest.MonkeyPatch, subcommand: str, tool_module: str
) -> None:
    monkeypatch.setitem(sys.modules, tool_module, None)  # importing it raises ModuleNotFoundError

    result = CliRunner().invoke(cli, [subcommand])

    assert result.exit_code == 1
    assert result.output == f"Error: {MISSING_TOOLS}\n"


def test_the_help_of_an_install_without_the_tools_lists_what_it_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    for package in ("local_stack", "local_openai"):
        monkeypatch.setitem(sys.modules, package, None)

    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    listed = set(re.findall(r"^  (\S+)", commands, flags=re.MULTILINE))  # a wrapped description is indented more
    assert listed == {"send", "redrive", "check-alarm-topic"}


def test_a_module_missing_for_another_reason_is_not_hidden() -> None:
    with pytest.raises(ModuleNotFoundError), development_tools():
        raise ModuleNotFoundError("no module named 'moto'", name="moto")
