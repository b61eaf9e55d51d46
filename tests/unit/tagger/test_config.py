"""Configuration from the environment (README, "Configuration"), and refusing to send the key in clear text."""

import pytest

from tagger.config import Settings
from tagger.errors import ConfigurationError

REQUIRED = {"IDEMPOTENCY_TABLE_NAME": "table", "OPENAI_API_KEY": "sk-test"}


def test_defaults_are_the_documented_defaults() -> None:
    settings = Settings.from_environment(REQUIRED)
    assert settings.openai_base_url == "https://api.openai.com/v1"
    assert settings.event_bus_name == "default"
    assert settings.event_source == "completion-tagger"
    assert settings.max_receive_count == 5
    assert settings.idempotency_expiry_seconds == 86400
    assert settings.max_concurrency == 10
    assert settings.openai_api_key_secret is None


def test_every_variable_is_read() -> None:
    settings = Settings.from_environment(
        {
            **REQUIRED,
            "OPENAI_BASE_URL": "https://proxy.example.com/v1/",
            "OPENAI_API_KEY_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
            "EVENT_BUS_NAME": "bus",
            "EVENT_SOURCE": "src",
            "MAX_RECEIVE_COUNT": "7",
            "IDEMPOTENCY_EXPIRY_SECONDS": "3600",
            "MAX_CONCURRENCY": "25",
            "RETRY_BACKOFF_MAX_SECONDS": "300",
        }
    )
    assert settings.openai_base_url == "https://proxy.example.com/v1"
    assert (settings.event_bus_name, settings.event_source) == ("bus", "src")
    assert (settings.max_receive_count, settings.idempotency_expiry_seconds, settings.max_concurrency) == (7, 3600, 25)
    assert settings.retry_backoff_max_seconds == 300


@pytest.mark.parametrize(
    ("receive_count", "backoff_max", "expiry"),
    [("5", "900", "4500"), ("10", "900", "3600"), ("1000", "43200", "2592000")],
)
def test_a_retry_horizon_longer_than_the_idempotency_expiry_is_refused(
    receive_count: str, backoff_max: str, expiry: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment(
            {
                **REQUIRED,
                "MAX_RECEIVE_COUNT": receive_count,
                "RETRY_BACKOFF_MAX_SECONDS": backoff_max,
                "IDEMPOTENCY_EXPIRY_SECONDS": expiry,
            }
        )
    message = str(raised.value)
    for name in ("MAX_RECEIVE_COUNT", "RETRY_BACKOFF_MAX_SECONDS", "IDEMPOTENCY_EXPIRY_SECONDS"):
        assert name in message


def test_a_retry_horizon_inside_the_idempotency_expiry_is_accepted() -> None:
    settings = Settings.from_environment(
        {**REQUIRED, "MAX_RECEIVE_COUNT": "5", "RETRY_BACKOFF_MAX_SECONDS": "900", "IDEMPOTENCY_EXPIRY_SECONDS": "4501"}
    )
    assert settings.idempotency_expiry_seconds == 4501


@pytest.mark.parametrize("url", ["http://127.0.0.1:8010/v1", "http://localhost:8010/v1", "http://[::1]:8010/v1"])
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    assert Settings.from_environment({**REQUIRED, "OPENAI_BASE_URL": url}).openai_base_url == url


@pytest.mark.parametrize("url", ["http://api.openai.com/v1", "http://10.0.0.5/v1", "ftp://x/v1", "api.openai.com/v1"])
def test_anything_else_than_https_is_refused_at_start(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"OPENAI_BASE_URL: .*https"):
        Settings.from_environment({**REQUIRED, "OPENAI_BASE_URL": url})


def test_missing_table_and_bad_numbers_are_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environment({"OPENAI_API_KEY": "k", "MAX_CONCURRENCY": "lots"})
    assert "IDEMPOTENCY_TABLE_NAME" in str(caught.value)
    assert "MAX_CONCURRENCY" in str(caught.value)


def test_configuration_errors_never_echo_the_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environment({"OPENAI_API_KEY": "sk-very-secret", "MAX_CONCURRENCY": "0"})
    assert "sk-very-secret" not in str(caught.value)
    assert "sk-very-secret" not in repr(Settings.from_environment(REQUIRED | {"OPENAI_API_KEY": "sk-very-secret"}))


def test_a_key_source_is_required() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY_SECRET"):
        Settings.from_environment({"IDEMPOTENCY_TABLE_NAME": "t"})
