"""Lambda entry point: wiring only. `composition` builds the parts; `logic.service` runs each batch."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagger.composition import create_service
from tagger.config import Settings
from tagger.telemetry import logger, metrics, tracer

service = create_service(Settings.from_environment())


@metrics.log_metrics
def _handle(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return service.handle(event, context, metrics)


_traced = tracer.capture_lambda_handler(_handle, capture_response=False) if tracer else _handle


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return _traced(event, context)  # type: ignore[no-any-return]
