"""Whether the bus the result events go to exists, checked once per container before the first record.

PutEvents to a bus that does not exist answers success, with event ids, on AWS: a typo in EVENT_BUS_NAME
would publish every result into nothing while every record counts as done. So the first record of a
container asks DescribeEventBus; until the bus is found, records are put back (cause `event_bus_missing`,
its own metric and alarm; docs/operations.md, "Alarms").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tagger.errors import EventBusMissing
from tagger.telemetry import logger

DEFAULT_BUS = "default"  # every account and region has it
# A missing (or unverifiable) bus is asked about again after this long, not for every record.
RECHECK_SECONDS = 30.0


class EventBusDescriber(Protocol):
    """What the check uses of boto3's EventBridge client."""

    def describe_event_bus(self, *, Name: str) -> Mapping[str, Any]: ...  # noqa: N803 - boto3's name


class EventBusCheck:
    """`ensure()` returns once the bus is known to exist, and raises `EventBusMissing` while it does not.

    Any other failure of DescribeEventBus (throttled, denied, unreachable) does not stop the records: it is
    logged, and asked again after `RECHECK_SECONDS`.
    """

    def __init__(
        self,
        client: EventBusDescriber,
        bus_name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = client
        self._bus_name = bus_name
        self._clock = clock
        self._lock = threading.Lock()
        self._found = bus_name == DEFAULT_BUS
        self._missing = False
        self._next_check = 0.0

    def ensure(self) -> None:
        if self._found:
            return
        with self._lock:  # one DescribeEventBus at a time, whatever the number of records waiting
            if not self._found and self._clock() >= self._next_check:
                self._check()
            missing = self._missing
        if missing:
            raise EventBusMissing(self._bus_name)

    def _check(self) -> None:
        """Under the lock: ask, and remember the answer."""
        self._next_check = self._clock() + RECHECK_SECONDS
        try:
            self._client.describe_event_bus(Name=self._bus_name)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code == "ResourceNotFoundException":
                if not self._missing:
                    logger.error(
                        "the event bus for result events does not exist: records are put back until it does",
                        extra={"event_bus": self._bus_name},
                    )
                self._missing = True
                return
            logger.warning(
                "could not check that the event bus exists", extra={"event_bus": self._bus_name, "error": code}
            )
            return
        except BotoCoreError as error:
            logger.warning(
                "could not check that the event bus exists",
                extra={"event_bus": self._bus_name, "error": type(error).__name__},
            )
            return
        self._found, self._missing = True, False
