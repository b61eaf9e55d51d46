"""The development tools some subcommands run, and what an install without them says instead.

`run` and `local-openai` run the local stack and the local OpenAI server, which live in the checkout's
`tools/` (README, "Layout"), not in the installed package: the editable install of `make` puts them on the
path. Installed from a wheel, the program has only the product, and these subcommands say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

TOOL_PACKAGES = frozenset({"local_stack", "local_openai"})
MISSING_TOOLS = "this subcommand needs the development tools: run it from a checkout (make run)"


@contextmanager
def development_tools() -> Iterator[None]:
    """Around the import of a tool: a tool missing from this install becomes a one-line error (exit 1)."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in TOOL_PACKAGES:
            raise
        raise click.ClickException(MISSING_TOOLS) from error
