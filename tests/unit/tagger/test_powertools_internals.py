"""The Powertools internals the batch processor builds on, pinned to the version they were checked against.

`OrderedConcurrentBatchProcessor` (tagger.logic.batch) overrides Powertools' private `_to_batch_type`, calls its
private `_process_record` from worker threads and puts the `success_messages`/`fail_messages` its handlers fill
back in batch order. Private members may change in any release: an upgrade of the pin fails here, naming what
to re-check before the pins and `CHECKED_VERSION` move on.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from contextlib import nullcontext
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from tagger.logic.batch import OrderedConcurrentBatchProcessor

CHECKED_VERSION = "3.37.0"
DISTRIBUTION = "aws-lambda-powertools"
ROOT = Path(__file__).resolve().parents[3]
PINNED_IN = (ROOT / "layers" / "dependencies" / "requirements.txt", ROOT / "requirements-dev.txt")

RECHECK = (
    "re-check tagger/logic/batch.py against this Powertools before moving CHECKED_VERSION: "
    "BatchProcessor._process_record(record) still calls self._to_batch_type(record=..., event_type=..., model=...) "
    "and hands what it returns to the record handler, and is safe to call from several threads at once; "
    "success_handler/failure_handler still append to success_messages/fail_messages (which process() puts back "
    "in batch order) and return (status, result, record) tuples; _collect_sqs_failures still reads each failed "
    "record's message_id"
)

# The parameters of each member as the processor calls or overrides it.
RELIED_ON = {
    "process": ["self"],
    "_to_batch_type": ["self", "record", "event_type", "model"],
    "_process_record": ["self", "record"],
    "success_handler": ["self", "record", "result"],
    "failure_handler": ["self", "record", "exception"],
    "_collect_sqs_failures": ["self"],
}


def pinned_version(requirements: Path) -> str:
    """The version `requirements` pins Powertools to (names compared as pip does: case, `-`, `_`, `.` alike)."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        requirement, pinned, version = line.partition("#")[0].partition("==")
        name = re.sub(r"[-_.]+", "-", requirement.split("[")[0].strip()).lower()
        if pinned and name == DISTRIBUTION:
            return version.strip()
    raise AssertionError(f"{requirements.name} does not pin {DISTRIBUTION}")


@pytest.mark.parametrize("requirements", PINNED_IN, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_powertools_is_pinned_to_the_checked_version(requirements: Path) -> None:
    assert pinned_version(requirements) == CHECKED_VERSION, RECHECK


def test_the_installed_powertools_is_the_checked_version() -> None:
    assert importlib.metadata.version(DISTRIBUTION) == CHECKED_VERSION, RECHECK


@pytest.mark.parametrize(("member", "parameters"), RELIED_ON.items())
def test_the_private_members_keep_the_signatures_the_processor_relies_on(member: str, parameters: list[str]) -> None:
    found = getattr(BatchProcessor, member, None)
    assert callable(found), f"BatchProcessor.{member} is gone: {RECHECK}"
    assert list(inspect.signature(found).parameters) == parameters, f"BatchProcessor.{member} changed: {RECHECK}"


def test_the_override_accepts_the_call_powertools_makes() -> None:
    processor = OrderedConcurrentBatchProcessor(1, nullcontext)
    override = inspect.signature(processor._to_batch_type)
    override.bind(record={}, event_type=EventType.SQS, model=None)


def test_a_prepared_processor_has_the_attributes_the_processor_reads_and_rewrites() -> None:
    processor = BatchProcessor(event_type=EventType.SQS)
    with processor([], lambda record: None):
        assert processor.records == [], RECHECK
        assert processor.success_messages == [] and processor.fail_messages == [], RECHECK
    assert processor.batch_response == {"batchItemFailures": []}, RECHECK
