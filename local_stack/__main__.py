"""`python -m local_stack COMMAND`: `run` (what `make run` calls), `services`, `up`, `redrive`; see local_stack.cli."""

from local_stack.cli import cli

cli.main(prog_name="python -m local_stack")
