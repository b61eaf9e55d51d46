"""A Lambda context object for local invocations, with the attributes the Python runtime provides."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from local_stack.account import ACCOUNT_ID, REGION


class LocalLambdaContext:
    """What `context` is on Lambda: names, memory, ARN, request id and a countdown to the timeout.

    `get_remaining_time_in_millis()` counts down from the function timeout, starting when the
    context is made (just before the handler is called), as it does on Lambda. Powertools' Logger
    reads `function_name`, `memory_limit_in_mb`, `invoked_function_arn` and `aws_request_id`.
    """

    def __init__(
        self,
        *,
        function_name: str = "completion-tagger",
        timeout_seconds: float = 30.0,
        memory_limit_in_mb: int = 512,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._clock = clock
        self._deadline = clock() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function would time out (never negative)."""
        return max(0, int((self._deadline - self._clock()) * 1000))
