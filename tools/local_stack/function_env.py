"""The Lambda handler's environment, and loading the handler the way the Lambda runtime does.

`tagger.app` reads its configuration from environment variables when it is imported (README, "Configuration"),
so the environment is set first and the module imported after: like a cold start on Lambda.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any, cast

from pydantic import model_validator

from local_stack import FUNCTIONS_DIR
from local_stack.event_source import Handler
from tagger.config import Settings

HANDLER_MODULE = "tagger.app"
HANDLER_FUNCTION = "lambda_handler"
HANDLER_FILE = FUNCTIONS_DIR / "tagger" / "app.py"

# Variables that would configure the function differently from what the local stack provisioned.
_CLEARED_VARIABLES = ("OPENAI_API_KEY_SECRET", "AWS_LAMBDA_LOG_LEVEL", "POWERTOOLS_IDEMPOTENCY_DISABLED")


class HandlerUnavailableError(RuntimeError):
    """The handler module is missing or failed to import (for example, rejected its configuration)."""


class FunctionSettings(Settings):
    """The function's own `Settings`, as the local stack gives them: its APIs, its resources and the local
    timings, validated by the function's rules before any container starts; plus Powertools' log level.

    A value given as None takes the function's default (the local server's API timeout, for example, is
    only shortened when the stack runs one).
    """

    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _none_takes_the_default(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {name: value for name, value in values.items() if value is not None}
        return values


def function_environment(settings: FunctionSettings) -> dict[str, str]:
    """The function's environment variables, as `template.yaml` sets them on Lambda (plus Powertools')."""
    variables = {
        name.upper(): _as_variable(value)
        for name in Settings.model_fields
        if (value := getattr(settings, name)) is not None
    }
    return variables | {
        "POWERTOOLS_SERVICE_NAME": "completion-tagger",
        "POWERTOOLS_METRICS_NAMESPACE": "CompletionTagger",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
    }


def _as_variable(value: object) -> str:
    """A setting as its environment variable spells it (`Settings.from_environment` reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def load_handler(environment: Mapping[str, str]) -> Handler:
    """Set `environment` in this process, then import `tagger.app` and return its `lambda_handler`.

    The import happens once per process, as a Lambda container's cold start does: a second call
    returns the handler configured by the first.
    """
    if not HANDLER_FILE.is_file():
        missing = HANDLER_FILE.relative_to(FUNCTIONS_DIR.parent)
        raise HandlerUnavailableError(f"the handler is not there: {missing} does not exist")
    for name in _CLEARED_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(environment)
    try:
        module = importlib.import_module(HANDLER_MODULE)
    except Exception as error:  # any import-time failure is the function's init error
        raise HandlerUnavailableError(f"{HANDLER_MODULE} failed to load: {type(error).__name__}: {error}") from error
    handler: Any = getattr(module, HANDLER_FUNCTION, None)
    if not callable(handler):
        raise HandlerUnavailableError(f"{HANDLER_MODULE} has no callable {HANDLER_FUNCTION}")
    return cast(Handler, handler)
