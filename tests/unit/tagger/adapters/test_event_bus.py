"""EventBusCheck: a missing bus stops records, anything else about DescribeEventBus does not, and it asks rarely.

The client answers DescribeEventBus as AWS does (botocore's Stubber checks the requests against the API).
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_events import EventBridgeClient

from tagger.adapters.event_bus import RECHECK_SECONDS, EventBusCheck
from tagger.errors import EventBusMissing

BUS = "results-bus"
FOUND = {"Name": BUS, "Arn": f"arn:aws:events:us-east-1:111122223333:event-bus/{BUS}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client() -> EventBridgeClient:
    return boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_an_existing_bus_is_described_once(client: EventBridgeClient) -> None:
    with Stubber(client) as stub:
        stub.add_response("describe_event_bus", FOUND, {"Name": BUS})
        check = EventBusCheck(client, BUS)
        for _ in range(5):
            check.ensure()
        stub.assert_no_pending_responses()


def test_the_default_bus_is_never_described(client: EventBridgeClient) -> None:
    with Stubber(client):  # any call would fail: nothing is queued
        EventBusCheck(client, "default").ensure()


def test_a_missing_bus_raises_until_it_exists_asking_again_only_after_a_while(client: EventBridgeClient) -> None:
    clock = Clock()
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_event_bus", "ResourceNotFoundException", "Event bus results-bus does not exist."
        )
        stub.add_response("describe_event_bus", FOUND, {"Name": BUS})
        check = EventBusCheck(client, BUS, clock=clock)
        for _ in range(3):
            with pytest.raises(EventBusMissing, match=BUS):
                check.ensure()
        clock.now += RECHECK_SECONDS
        check.ensure()  # created meanwhile
        check.ensure()
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_a_check_that_cannot_be_made_does_not_stop_the_records(client: EventBridgeClient, code: str) -> None:
    clock = Clock()
    with Stubber(client) as stub:
        stub.add_client_error("describe_event_bus", code, "no")
        stub.add_response("describe_event_bus", FOUND, {"Name": BUS})
        check = EventBusCheck(client, BUS, clock=clock)
        check.ensure()
        check.ensure()  # not asked again yet
        clock.now += RECHECK_SECONDS
        check.ensure()
        stub.assert_no_pending_responses()
