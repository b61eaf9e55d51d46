"""The two functions under test, by name: where their handler lives and how to import it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal, cast

Implementation = Literal["ours", "baseline"]
IMPLEMENTATIONS: tuple[Implementation, ...] = ("ours", "baseline")
HANDLER_MODULES: dict[Implementation, str] = {"ours": "tagger.app", "baseline": "bench.baseline.app"}

Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(implementation: Implementation) -> Handler:
    """Import the handler module (its init: imports plus client creation) and return `lambda_handler`."""
    module = importlib.import_module(HANDLER_MODULES[implementation])
    return cast(Handler, module.lambda_handler)
