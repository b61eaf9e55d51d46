"""`completion-tagger`: one program for the project's commands.

`send` is the producer's command (see `send_command.py`), `redrive` and `check-alarm-topic` the operator's
(see `redrive/` and `alarm_topic.py`);
`run` and `local-openai` are the local stack's and the local OpenAI server's, whose `python -m local_stack ...`
and `python -m local_openai` forms keep working: these subcommands hand their arguments over unchanged.
"""

from __future__ import annotations

import click

from completion_tagger.alarm_topic import check_alarm_topic
from completion_tagger.development_tools import development_tools
from completion_tagger.redrive.command import command_line as redrive_command_line
from completion_tagger.send_command import send

PROG = "completion-tagger"
_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


@click.group(name=PROG, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tag stored OpenAI chat completions: send requests, run the local stack, redrive, check the alarm topic."""


cli.add_command(send)
cli.add_command(check_alarm_topic)


@cli.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def run(arguments: tuple[str, ...]) -> None:
    """The whole job end to end on the embedded local stack (`make run`). See `run --help`."""
    with development_tools():
        from local_stack.cli import main as local_stack_main  # noqa: PLC0415 - moto loads only for these commands

    raise SystemExit(local_stack_main(["run", *arguments], prog=PROG))


@cli.command(context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def redrive(arguments: tuple[str, ...]) -> None:
    """Move dead-lettered tag requests back to the queue (`make redrive`). See `redrive --help`."""
    raise SystemExit(redrive_command_line(list(arguments), prog=PROG))


@cli.command("local-openai", context_settings=_PASS_THROUGH, add_help_option=False)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def local_openai(arguments: tuple[str, ...]) -> None:
    """The local OpenAI-compatible server in the foreground (`make local-openai`). See `local-openai --help`."""
    with development_tools():
        from local_openai.__main__ import main as local_openai_main  # noqa: PLC0415 - loads only for this command

    raise SystemExit(local_openai_main(list(arguments), prog=f"{PROG} local-openai"))


def main() -> None:
    """The console script's entry point."""
    cli()
