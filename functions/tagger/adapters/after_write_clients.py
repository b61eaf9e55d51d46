"""The configuration of every AWS client called after an API write: PutEvents, the completion record's
settling writes, the re-queued copy and the visibility change.

What the function does after a write must fit in what is left of the invocation (README, "What happens to
each message"): one attempt each, botocore adding none of its own, bounded by a short connect and read
timeout. The logic budgets one such call as POST_WRITE_CALL_SECONDS (logic/leased_apply.py); a unit test
keeps the two equal.
"""

from __future__ import annotations

from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
ATTEMPT_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


def after_write_client_config(max_pool_connections: int) -> Config:
    """Short timeouts and a single attempt (`total_max_attempts`: botocore's `max_attempts` counts retries,
    so 1 there would mean two attempts), so every call is one the caller decided it has time for."""
    return Config(
        max_pool_connections=max_pool_connections,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
