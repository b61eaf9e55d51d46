"""The Powertools logger, metrics and tracer: one of each per container, shared by every module.

POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE name them (the template sets both); without them,
as in local runs and tests, they still carry the project's names rather than Powertools' placeholders.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "completion-tagger"
NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "CompletionTagger"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)
