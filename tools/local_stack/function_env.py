"""The Lambda handler's environment, and loading the handler the way the Lambda runtime does.

`tagger.app` reads its configuration from environment variables when it is imported (README, "Configuration"),
so the environment is set first and the module imported after: like a cold start on Lambda.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from local_stack import FUNCTIONS_DIR
from local_stack.event_source import Handler

HANDLER_MODULE = "tagger.app"
HANDLER_FUNCTION = "lambda_handler"
HANDLER_FILE = FUNCTIONS_DIR / "tagger" / "app.py"

# Variables that would configure the function differently from what the local stack provisioned.
_CLEARED_VARIABLES = ("OPENAI_API_KEY_SECRET", "AWS_LAMBDA_LOG_LEVEL", "POWERTOOLS_IDEMPOTENCY_DISABLED")


class HandlerUnavailableError(RuntimeError):
    """The handler module is missing or failed to import (for example, rejected its configuration)."""


@dataclass(frozen=True)
class FunctionSettings:
    """What the local stack gives the function: its APIs, its resources, and the local timings."""

    openai_base_url: str
    openai_api_key: str
    idempotency_table_name: str
    event_bus_name: str
    event_source: str
    max_receive_count: int
    max_concurrency: int
    # Backoff of put-back records, shortened to the local visibility timeout so retries happen in-run.
    retry_backoff_base_seconds: int
    retry_backoff_max_seconds: int
    log_level: str = "INFO"
    completion_leases: bool = True
    # None: the function's default. Shortened against the local server, so that a write whose outcome is
    # unknown settles (twice this) within the run.
    openai_timeout_seconds: float | None = None
    # All containers together, per second; 0: no cap.
    api_requests_per_second: float = 0


def function_environment(settings: FunctionSettings) -> dict[str, str]:
    """The function's environment variables, as `template.yaml` sets them on Lambda (plus Powertools')."""
    return {
        "OPENAI_BASE_URL": settings.openai_base_url,
        "OPENAI_API_KEY": settings.openai_api_key,
        "IDEMPOTENCY_TABLE_NAME": settings.idempotency_table_name,
        "EVENT_BUS_NAME": settings.event_bus_name,
        "EVENT_SOURCE": settings.event_source,
        "MAX_RECEIVE_COUNT": str(settings.max_receive_count),
        "MAX_CONCURRENCY": str(settings.max_concurrency),
        "COMPLETION_LEASES": "true" if settings.completion_leases else "false",
        "API_REQUESTS_PER_SECOND": f"{settings.api_requests_per_second:g}",
        "RETRY_BACKOFF_BASE_SECONDS": str(settings.retry_backoff_base_seconds),
        "RETRY_BACKOFF_MAX_SECONDS": str(settings.retry_backoff_max_seconds),
        "POWERTOOLS_SERVICE_NAME": "completion-tagger",
        "POWERTOOLS_METRICS_NAMESPACE": "CompletionTagger",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
    } | (
        {}
        if settings.openai_timeout_seconds is None
        else {"OPENAI_TIMEOUT_SECONDS": f"{settings.openai_timeout_seconds:g}"}
    )


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
