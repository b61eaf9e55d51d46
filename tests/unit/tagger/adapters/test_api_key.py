"""ApiKeyProvider: where the key comes from, how often the secret is read, and that its value never leaks."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.types import TransformOptions
from botocore.exceptions import ClientError

from tagger.adapters.api_key import ApiKeyProvider, secret_region
from tagger.errors import ApiKeyUnavailable

SECRET_ID = "completion-tagger/openai"
SECRET_VALUE = "sk-from-the-secret-42"


class FakeSecrets(BaseProvider):
    """Powertools' parameter provider (its real cache) over an in-memory secret; counts the fetches behind it."""

    def __init__(self, value: str | bytes | Exception, fetch_seconds: float = 0.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.value = value
        self.fetch_seconds = fetch_seconds
        self.fetches = 0
        self.asked: list[dict[str, Any]] = []

    def get(
        self,
        name: str,
        max_age: int | None = None,
        transform: TransformOptions = None,
        force_fetch: bool = False,
        **options: Any,
    ) -> Any:
        self.asked.append({"name": name, "max_age": max_age, "force_fetch": force_fetch})
        return super().get(name, max_age=max_age, transform=transform, force_fetch=force_fetch, **options)

    def _get(self, name: str, **options: Any) -> str | bytes:
        self.fetches += 1
        time.sleep(self.fetch_seconds)
        if isinstance(self.value, Exception):
            raise self.value
        return self.value

    def _get_multiple(self, path: str, **options: Any) -> dict[str, str]:
        raise NotImplementedError


class Untouchable:
    """A secrets source that must never be asked."""

    def get(self, name: str, **options: Any) -> str:
        raise AssertionError("the secret was read")


def provider(value: str | bytes | Exception, fetch_seconds: float = 0.0) -> tuple[ApiKeyProvider, FakeSecrets]:
    secrets = FakeSecrets(value, fetch_seconds)
    return ApiKeyProvider(SECRET_ID, None, secrets), secrets


def test_a_static_key_is_handed_out_without_any_secret() -> None:
    keys = ApiKeyProvider(None, "sk-local-static", Untouchable())
    assert keys.get() == "sk-local-static"
    assert keys.refresh() == "sk-local-static"


def test_the_secret_wins_over_a_static_key() -> None:
    secrets = FakeSecrets(SECRET_VALUE)
    assert ApiKeyProvider(SECRET_ID, "sk-local-static", secrets).get() == SECRET_VALUE


@pytest.mark.parametrize(("secret_id", "static_key"), [(None, None), ("", ""), (None, "")])
def test_neither_secret_nor_key_is_a_configuration_error(secret_id: str | None, static_key: str | None) -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        ApiKeyProvider(secret_id, static_key, Untouchable())


def test_the_secret_is_fetched_once_and_cached_across_calls() -> None:
    keys, secrets = provider(SECRET_VALUE)
    assert {keys.get() for _ in range(50)} == {SECRET_VALUE}
    assert secrets.fetches == 1
    assert {asked["name"] for asked in secrets.asked} == {SECRET_ID}
    assert all(asked["max_age"] >= 60 and not asked["force_fetch"] for asked in secrets.asked)


def test_the_secret_is_fetched_once_when_many_threads_ask_at_once() -> None:
    keys, secrets = provider(SECRET_VALUE, fetch_seconds=0.02)
    start = threading.Barrier(16)
    seen: list[str] = []

    def read() -> None:
        start.wait()
        seen.append(keys.get())

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [SECRET_VALUE] * 16
    assert secrets.fetches == 1


def test_refresh_fetches_again_and_later_calls_use_the_new_value() -> None:
    keys, secrets = provider(SECRET_VALUE)
    assert keys.get() == SECRET_VALUE
    secrets.value = "sk-rotated-43"
    assert keys.get() == SECRET_VALUE  # still cached
    assert keys.refresh() == "sk-rotated-43"
    assert secrets.asked[-1]["force_fetch"] is True
    assert keys.get() == "sk-rotated-43"
    assert secrets.fetches == 2


@pytest.mark.parametrize(
    "secret",
    [
        SECRET_VALUE,
        f"  {SECRET_VALUE}\n",
        SECRET_VALUE.encode(),
        f'{{"api_key": "{SECRET_VALUE}"}}',
        f'{{"OPENAI_API_KEY": "{SECRET_VALUE}"}}',
        f'{{"api_key": "", "OPENAI_API_KEY": "{SECRET_VALUE}"}}',
        f'{{"api_key": "{SECRET_VALUE}", "OPENAI_API_KEY": "sk-other"}}',
        f'{{"api_key": "{SECRET_VALUE}"}}'.encode(),
    ],
    ids=[
        "plain",
        "padded",
        "binary",
        "json-api_key",
        "json-OPENAI_API_KEY",
        "json-empty-first",
        "json-both",
        "json-binary",
    ],
)
def test_plain_and_json_secrets_give_the_key(secret: str | bytes) -> None:
    keys, _ = provider(secret)
    assert keys.get() == SECRET_VALUE


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "   \n",
        f'{{"token": "{SECRET_VALUE}"}}',
        f'{{"api_key": 42, "note": "{SECRET_VALUE}"}}',
        f'{{"api_key": "{SECRET_VALUE}"',
    ],
    ids=["empty", "blank", "json-without-field", "json-field-not-a-string", "invalid-json"],
)
def test_an_unusable_secret_is_unavailable_and_its_value_never_in_the_message(secret: str) -> None:
    keys, _ = provider(secret)
    with pytest.raises(ApiKeyUnavailable) as raised:
        keys.get()
    assert SECRET_VALUE not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__


def test_a_provider_error_is_unavailable_without_its_message() -> None:
    keys, _ = provider(RuntimeError(f"AccessDenied reading {SECRET_ID}: {SECRET_VALUE}"))
    with pytest.raises(ApiKeyUnavailable) as raised:
        keys.get()
    assert SECRET_VALUE not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__  # the provider's error is not chained into the traceback


def test_a_provider_error_is_not_cached() -> None:
    keys, secrets = provider(RuntimeError("throttled"))
    with pytest.raises(ApiKeyUnavailable):
        keys.get()
    secrets.value = SECRET_VALUE
    assert keys.get() == SECRET_VALUE


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("AccessDeniedException", "full ARN"),
        ("ResourceNotFoundException", "region"),
        ("DecryptionFailure", "KMS key"),
        ("KMSDisabledException", "disabled"),
    ],
)
def test_a_refused_read_names_the_aws_error_code_and_what_to_check(code: str, hint: str) -> None:
    # Powertools wraps the client's error in GetParameterError; the AWS code must survive the wrapping.
    refusal = ClientError({"Error": {"Code": code, "Message": "refused"}}, "GetSecretValue")
    keys, _ = provider(refusal)
    with pytest.raises(ApiKeyUnavailable) as raised:
        keys.get()
    assert raised.value.aws_error_code == code
    assert code in str(raised.value) and hint in str(raised.value)


def test_a_failure_that_is_no_aws_error_is_named_by_its_type() -> None:
    keys, _ = provider(TimeoutError("slow"))
    with pytest.raises(ApiKeyUnavailable, match="GetParameterError") as raised:
        keys.get()
    assert raised.value.aws_error_code is None


@pytest.mark.parametrize(
    ("secret_id", "region"),
    [
        ("arn:aws:secretsmanager:eu-west-1:111122223333:secret:team/key-AbC123", "eu-west-1"),
        ("arn:aws-cn:secretsmanager:cn-north-1:111122223333:secret:key-AbC123", "cn-north-1"),
        ("team/key", None),
        (None, None),
    ],
)
def test_a_secret_is_read_in_the_region_its_arn_names(secret_id: str | None, region: str | None) -> None:
    assert secret_region(secret_id) == region
