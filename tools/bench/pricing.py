"""Public list prices (AWS us-east-1) and the cost of a million tag requests.

Prices checked on 2026-11-26 against the AWS pricing pages named beside each constant (as quoted there and
by 2026 pricing guides); on-demand rates, first volume tier, free tiers ignored, no Savings Plans.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PRICES_CHECKED_ON = "2026-11-26"
PRICE_REGION = "us-east-1"

# https://aws.amazon.com/lambda/pricing/ — Arm, first 7.5 billion GB-seconds a month.
LAMBDA_ARM64_USD_PER_GB_SECOND = 0.0000133334
# https://aws.amazon.com/lambda/pricing/ — $0.20 per 1M requests (either architecture).
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
# https://aws.amazon.com/dynamodb/pricing/on-demand/ — since the November 2024 price cut.
DYNAMODB_USD_PER_WRITE_REQUEST_UNIT = 0.625 / 1_000_000
DYNAMODB_USD_PER_READ_REQUEST_UNIT = 0.125 / 1_000_000
# https://aws.amazon.com/eventbridge/pricing/ — custom events, each 64 KB chunk of an entry is one event.
EVENTBRIDGE_USD_PER_CUSTOM_EVENT = 1.00 / 1_000_000
# https://aws.amazon.com/sqs/pricing/ — standard queue, first 100 billion requests a month, per 64 KB chunk.
SQS_USD_PER_REQUEST = 0.40 / 1_000_000

SQS_MAX_MESSAGES_PER_CALL = 10
MILLION = 1_000_000


@dataclass(frozen=True)
class Usage:
    """What one invocation of a batch uses; per-record figures are averages over the measured runs."""

    batch_size: int
    duration_seconds: float  # the batch's wall time, which Lambda bills (rounded up to the millisecond)
    memory_mb: int
    dynamodb_writes_per_record: float  # request units: idempotency items stay under 1 KB
    dynamodb_reads_per_record: float
    events_per_record: float  # PutEvents entries (EventBridge bills entries, not calls)
    function_sqs_requests_per_record: float = 0.0  # e.g. ChangeMessageVisibilityBatch for put-back records


@dataclass(frozen=True)
class CostPerMillion:
    """USD for one million tag requests, by line item."""

    lambda_compute: float
    lambda_requests: float
    dynamodb: float
    eventbridge: float
    sqs: float

    @property
    def total(self) -> float:
        return self.lambda_compute + self.lambda_requests + self.dynamodb + self.eventbridge + self.sqs

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def queue_requests_per_record(batch_size: int) -> float:
    """SQS requests a record costs outside the function: one SendMessage by the producer, and the event
    source mapping's ReceiveMessage and DeleteMessageBatch, each covering up to 10 messages.
    (Empty long polls of an idle queue are not counted.)"""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    calls = math.ceil(batch_size / SQS_MAX_MESSAGES_PER_CALL)
    return 1 + 2 * calls / batch_size


def cost_per_million(usage: Usage) -> CostPerMillion:
    """Cost of a million tag requests delivered in batches of `usage.batch_size`."""
    if usage.batch_size < 1:
        raise ValueError("batch size must be at least 1")
    invocations = MILLION / usage.batch_size
    billed_seconds = math.ceil(usage.duration_seconds * 1000) / 1000
    gb_seconds = invocations * billed_seconds * usage.memory_mb / 1024
    sqs_requests = queue_requests_per_record(usage.batch_size) + usage.function_sqs_requests_per_record
    return CostPerMillion(
        lambda_compute=gb_seconds * LAMBDA_ARM64_USD_PER_GB_SECOND,
        lambda_requests=invocations * LAMBDA_USD_PER_REQUEST,
        dynamodb=MILLION
        * (
            usage.dynamodb_writes_per_record * DYNAMODB_USD_PER_WRITE_REQUEST_UNIT
            + usage.dynamodb_reads_per_record * DYNAMODB_USD_PER_READ_REQUEST_UNIT
        ),
        eventbridge=MILLION * usage.events_per_record * EVENTBRIDGE_USD_PER_CUSTOM_EVENT,
        sqs=MILLION * sqs_requests * SQS_USD_PER_REQUEST,
    )


def price_list() -> dict[str, float | str]:
    """The constants above, for the results file."""
    return {
        "checked_on": PRICES_CHECKED_ON,
        "region": PRICE_REGION,
        "lambda_arm64_usd_per_gb_second": LAMBDA_ARM64_USD_PER_GB_SECOND,
        "lambda_usd_per_million_requests": LAMBDA_USD_PER_REQUEST * MILLION,
        "dynamodb_usd_per_million_write_request_units": DYNAMODB_USD_PER_WRITE_REQUEST_UNIT * MILLION,
        "dynamodb_usd_per_million_read_request_units": DYNAMODB_USD_PER_READ_REQUEST_UNIT * MILLION,
        "eventbridge_usd_per_million_custom_events": EVENTBRIDGE_USD_PER_CUSTOM_EVENT * MILLION,
        "sqs_usd_per_million_requests": SQS_USD_PER_REQUEST * MILLION,
    }
