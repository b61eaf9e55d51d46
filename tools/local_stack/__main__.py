"""`python -m local_stack COMMAND`: `run` (what `make run` calls), `services`, `up`, `redrive` (commands.py)."""

from local_stack.commands import cli

cli.main(prog_name="python -m local_stack")
