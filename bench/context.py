"""A Lambda context for the bench's function processes.

Like `local_stack.lambda_context.LocalLambdaContext`, but importing nothing else: that module imports
`local_stack.aws_endpoint`, hence moto, which would inflate the measured memory of a function process.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


class BenchLambdaContext:
    """The attributes the Python runtime's context has, with a countdown from the function timeout."""

    def __init__(self, *, function_name: str, timeout_seconds: float, memory_limit_in_mb: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
