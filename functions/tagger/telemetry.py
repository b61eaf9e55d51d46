"""The Powertools logger, metrics and tracer: one of each per container, shared by every module.

POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE name them (the template sets both); without them,
as in local runs and tests, they still carry the project's names rather than Powertools' placeholders.

The tracer exists only where it would trace: Powertools' Tracer imports the X-Ray SDK, whose recorder
(with two boto3 clients) costs about 120 ms of every cold start, even when tracing is disabled.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "completion-tagger"
NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "CompletionTagger"
TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})


def tracing_enabled() -> bool:
    """Powertools' own rule: off when POWERTOOLS_TRACE_DISABLED is true, under `sam local`, or off Lambda."""
    disabled = os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in TRUTHY
    return not disabled and not os.getenv("AWS_SAM_LOCAL") and bool(os.getenv("LAMBDA_TASK_ROOT"))


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE) if tracing_enabled() else None
