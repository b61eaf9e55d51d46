"""A deployed stack's outputs (`aws cloudformation describe-stacks`): where its queue and bus are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

QUEUE_URL_OUTPUT = "TagRequestQueueUrl"
EVENT_BUS_OUTPUT = "EventBusName"


class StackError(RuntimeError):
    """The stack could not be read, or lacks an output. The message says which."""


class _StackDescriber(Protocol):
    def describe_stacks(self, *, StackName: str) -> Mapping[str, Any]: ...  # noqa: N803 - boto3's name


def stack_outputs(cloudformation: Any, stack_name: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """The `wanted` outputs of `stack_name`; a StackError names any that are missing."""
    describer: _StackDescriber = cloudformation
    try:
        stacks = describer.describe_stacks(StackName=stack_name).get("Stacks") or []
    except (ClientError, BotoCoreError) as error:
        raise StackError(f"could not describe stack {stack_name}: {error}") from None
    if not stacks:
        raise StackError(f"stack {stack_name} not found")
    outputs = {str(o.get("OutputKey")): str(o.get("OutputValue")) for o in stacks[0].get("Outputs") or []}
    missing = [name for name in wanted if not outputs.get(name)]
    if missing:
        raise StackError(f"stack {stack_name} has no output(s) {', '.join(missing)}: is it a completion-tagger stack?")
    return {name: outputs[name] for name in wanted}
