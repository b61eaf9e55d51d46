"""The function's configuration, read once per container from environment variables (README, "Configuration")."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagger.errors import ConfigurationError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_HOSTNAMES = frozenset({"localhost", "host.docker.internal"})


def is_loopback_host(host: str) -> bool:
    """True for hosts that never leave the machine (local work), where plain http is acceptable."""
    if host in LOOPBACK_HOSTNAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseModel):
    """Validated configuration. Field names mirror the environment variables they come from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_api_key_secret: str | None = None
    openai_api_key: str | None = Field(default=None, repr=False)
    idempotency_table_name: str = Field(min_length=1)
    event_bus_name: str = "default"
    event_source: str = "completion-tagger"
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    idempotency_expiry_seconds: int = Field(default=86400, ge=60)
    max_concurrency: int = Field(default=10, ge=1, le=100)
    # Per-completion leases and key versions (docs/design.md, "Concurrency and ordering").
    completion_leases: bool = True
    # Backoff for records put back on the queue (README, "Configuration").
    retry_backoff_base_seconds: int = Field(default=5, ge=0, le=43200)
    retry_backoff_max_seconds: int = Field(default=900, ge=0, le=43200)
    # All containers together send at most this many API requests per second; 0: no cap (README, "Configuration").
    api_requests_per_second: float = Field(default=0, ge=0, le=10000)
    # Read timeout of one API call; a timed-out call is retried like a 5xx.
    openai_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    # Time kept in reserve at the end of an invocation: no record starts, and no retry waits, inside it.
    time_reserve_millis: int = Field(default=3000, ge=0)

    @field_validator("openai_base_url")
    @classmethod
    def _base_url_is_safe(cls, value: str) -> str:
        """The API key travels with every request, so it may only go over TLS or stay on this machine."""
        parts = urlsplit(value)
        host = parts.hostname or ""
        if parts.scheme == "https" and host:
            return value.rstrip("/")
        if parts.scheme == "http" and is_loopback_host(host):
            return value.rstrip("/")
        raise ValueError("must be an https URL (plain http is allowed only for a loopback host)")

    @model_validator(mode="after")
    def _has_a_key_source(self) -> Settings:
        if not self.openai_api_key_secret and not self.openai_api_key:
            raise ValueError("OPENAI_API_KEY_SECRET (or, for local work, OPENAI_API_KEY) must be set")
        return self

    @model_validator(mode="after")
    def _retries_end_before_the_idempotency_records_expire(self) -> Settings:
        """A message is delivered up to MAX_RECEIVE_COUNT times and stays away up to RETRY_BACKOFF_MAX_SECONDS
        after each: if its completed request were forgotten meanwhile, a redelivery could apply it again.

        The queue's visibility timeout (the time one delivery may take) is not known here, so this is the
        part of the horizon the function can check; the template's parameters cover the rest (docs/deploying.md).
        """
        horizon = self.max_receive_count * self.retry_backoff_max_seconds
        if horizon >= self.idempotency_expiry_seconds:
            raise ValueError(
                f"MAX_RECEIVE_COUNT × RETRY_BACKOFF_MAX_SECONDS ({self.max_receive_count} × "
                f"{self.retry_backoff_max_seconds} s = {horizon} s) must be less than IDEMPOTENCY_EXPIRY_SECONDS "
                f"({self.idempotency_expiry_seconds} s): a message retried for that long would outlive the record "
                "of its completed request; raise IDEMPOTENCY_EXPIRY_SECONDS or lower the others"
            )
        return self

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; unset or empty variables take their defaults."""
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if env.get(name.upper())}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{str(issue['loc'][0]).upper() if issue['loc'] else 'configuration'}: {issue['msg']}"
                for issue in error.errors(include_input=False, include_url=False)
            )
            raise ConfigurationError(f"invalid configuration: {problems}") from None
