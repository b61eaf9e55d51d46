"""`completion-tagger`: one program for the project's commands.

`send` is the producer's command (see `send_command.py`), `redrive` and `check-alarm-topic` the operator's
(see `redrive/` and `alarm_topic.py`); `run` and `local-openai` are the local stack's and the local OpenAI
server's own commands (`python -m local_stack run`, `python -m local_openai`), loaded only when asked
for, so that moto and the servers stay out of the other commands' start-up.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import click

from completion_tagger.alarm_topic import check_alarm_topic
from completion_tagger.development_tools import development_tools
from completion_tagger.redrive.command import redrive
from completion_tagger.send_command import send

PROG = "completion-tagger"


class LazyGroup(click.Group):
    """A group some of whose commands are imported when first used: name -> "module:attribute"."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, less the lazy ones whose package this install lacks (the help stays readable)."""
        present = [name for name, target in self.lazy_commands.items() if _package_present(target)]
        return sorted([*super().list_commands(ctx), *present])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy_commands[cmd_name].split(":")
        with development_tools():
            command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
        return command


def _package_present(target: str) -> bool:
    """Whether the top-level package of a "module:attribute" target is installed."""
    module_name = target.partition(":")[0]
    return importlib.util.find_spec(module_name.partition(".")[0]) is not None


@click.group(
    name=PROG,
    cls=LazyGroup,
    lazy_commands={"run": "local_stack.commands:run_command", "local-openai": "local_openai.serve_command:serve"},
    context_settings={"help_option_names": ["-h", "--help"]},
)
def cli() -> None:
    """Tag stored OpenAI chat completions: send requests, run the local stack, redrive, check the alarm topic."""


cli.add_command(send)
cli.add_command(redrive)
cli.add_command(check_alarm_topic)


def main() -> None:
    """The console script's entry point."""
    cli()
