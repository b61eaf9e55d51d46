"""Before a send to an event bus: the bus exists, and the stack's upstream rule routes what is sent.

`PutEvents` to a bus that does not exist answers success on AWS (`FailedEntryCount: 0`) and the events
are dropped, and so is an event no rule matches: a typo in `--event-bus`, `--source` or `--detail-type`
would lose every request without a word. So the sender checks first: `DescribeEventBus` for the bus
(which needs `events:DescribeEventBus`), and with a stack, its upstream rule's source pattern and detail
type (the stack's `UpstreamEventSource` and `UpstreamDetailType` parameters).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from completion_tagger.stack import EVENT_BUS_OUTPUT, StackError, stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE_PARAMETER = "UpstreamEventSource"
DETAIL_TYPE_PARAMETER = "UpstreamDetailType"


class EventBusCheckError(RuntimeError):
    """The bus does not exist, cannot be checked, or the stack's rule would not route the events."""


def check_event_bus_exists(events: EventBridgeClient, name: str) -> None:
    """Raises EventBusCheckError unless DescribeEventBus finds the bus."""
    try:
        events.describe_event_bus(Name=name)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise EventBusCheckError(f"event bus {name} does not exist (in {events.meta.region_name})") from None
        raise EventBusCheckError(
            f"could not check that event bus {name} exists (the sender needs events:DescribeEventBus): {error}"
        ) from None


def stack_event_bus(cloudformation: Any, stack_name: str, source: str, detail_type: str) -> str:
    """The stack's bus, after checking its upstream rule routes events of this source and detail type."""
    bus = stack_outputs(cloudformation, stack_name, (EVENT_BUS_OUTPUT,))[EVENT_BUS_OUTPUT]
    stacks = cloudformation.describe_stacks(StackName=stack_name).get("Stacks") or [{}]
    parameters = {str(p.get("ParameterKey")): str(p.get("ParameterValue")) for p in stacks[0].get("Parameters") or []}
    missing = [name for name in (SOURCE_PARAMETER, DETAIL_TYPE_PARAMETER) if name not in parameters]
    if missing:
        raise StackError(
            f"stack {stack_name} has no parameter(s) {', '.join(missing)}: is it a completion-tagger stack?"
        )
    if detail_type != parameters[DETAIL_TYPE_PARAMETER]:
        raise EventBusCheckError(
            f"--detail-type {detail_type}: stack {stack_name}'s upstream rule routes only "
            f"{parameters[DETAIL_TYPE_PARAMETER]} events into its queue"
        )
    if not wildcard_matches(parameters[SOURCE_PARAMETER], source):
        raise EventBusCheckError(
            f"--source {source}: stack {stack_name}'s upstream rule routes only sources matching "
            f"{parameters[SOURCE_PARAMETER]!r} into its queue"
        )
    return bus


def wildcard_matches(pattern: str, value: str) -> bool:
    """EventBridge's `wildcard` filter: `*` stands for any characters (none included)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value, re.DOTALL) is not None
