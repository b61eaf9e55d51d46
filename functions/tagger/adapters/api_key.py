"""Where the OpenAI API key comes from: Secrets Manager (cached per container) or, locally, the env."""

from __future__ import annotations

import json
import re
import threading

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from tagger.errors import ApiKeyUnavailable
from tagger.ports import SecretsSource

KEY_CACHE_SECONDS = 300
KEY_FIELDS = ("api_key", "OPENAI_API_KEY")


class ApiKeyProvider:
    """Hands out the API key. Fetched once and cached; `refresh()` re-reads it after a 401 (rotation)."""

    def __init__(
        self,
        secret_id: str | None,
        static_key: str | None,
        secrets: SecretsSource | None = None,
    ):
        if not secret_id and not static_key:
            raise ValueError("either OPENAI_API_KEY_SECRET or OPENAI_API_KEY must be set")
        self._secret_id = secret_id
        self._static_key = static_key
        self._secrets = secrets
        self._lock = threading.Lock()

    def get(self) -> str:
        return self._read(force=False)

    def refresh(self) -> str:
        return self._read(force=True)

    def _read(self, force: bool) -> str:
        if not self._secret_id:
            return self._static_key or ""
        with self._lock:  # one fetch per container, even with records running concurrently
            if self._secrets is None:
                self._secrets = SecretsProvider()
            try:
                value = self._secrets.get(self._secret_id, max_age=KEY_CACHE_SECONDS, force_fetch=force)
            except Exception as error:
                raise secret_read_failure(error) from None
        return _key_from_secret(value)


# What the usual refusals of GetSecretValue mean for this function (docs/deploying.md, "The API key secret").
AWS_ERROR_HINTS = {
    "AccessDeniedException": (
        "the function's role may not read the secret: is OPENAI_API_KEY_SECRET the full ARN (with its "
        "6-character suffix), does the secret's resource policy allow the role, and may the role use the "
        "secret's KMS key?"
    ),
    "ResourceNotFoundException": "no such secret: check its ARN, its region and its account",
    "DecryptionFailure": "the secret's KMS key cannot decrypt it for the function's role (key policy or grants)",
    "KMSAccessDeniedException": "the function's role may not use the secret's KMS key",
    "KMSDisabledException": "the secret's KMS key is disabled",
    "KMSInvalidStateException": "the secret's KMS key is pending deletion or not usable",
    "KMSNotFoundException": "the secret's KMS key does not exist",
    "InvalidRequestException": "the secret is scheduled for deletion or has no value",
}
_AWS_ERROR_IN_MESSAGE = re.compile(r"An error occurred \((\w+)\)")


def secret_read_failure(error: BaseException) -> ApiKeyUnavailable:
    """The failure to read the secret, naming the AWS error code behind it (never the secret's value).

    Powertools wraps every provider failure in a `GetParameterError` carrying only the original message;
    the original exception is its context. The code is taken from there, or else from that message.
    """
    code = aws_error_code(error)
    hint = AWS_ERROR_HINTS.get(code or "", "")
    message = f"could not read the API key secret: {code or type(error).__name__}"
    return ApiKeyUnavailable(f"{message} ({hint})" if hint else message, aws_error_code=code)


def aws_error_code(error: BaseException) -> str | None:
    """The AWS error code (`AccessDeniedException`...) of a failed AWS call, wrapped or not; None if not one."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientError):
            return str(seen.response.get("Error", {}).get("Code") or "") or None
        if isinstance(seen, BotoCoreError):
            return type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    match = _AWS_ERROR_IN_MESSAGE.search(str(error))
    return match.group(1) if match else None


def secret_region(secret_id: str | None) -> str | None:
    """The region a secret's ARN names, so it is read there rather than in the function's region; None for
    a name (read in the function's region)."""
    if secret_id and secret_id.startswith("arn:"):
        parts = secret_id.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _key_from_secret(value: object) -> str:
    """A plain-text secret is the key; a JSON one holds it under `api_key` (or `OPENAI_API_KEY`)."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise ApiKeyUnavailable("the API key secret is neither a key nor valid JSON") from None
        for field in KEY_FIELDS:
            if isinstance(document.get(field), str) and document[field]:
                return str(document[field])
        raise ApiKeyUnavailable(f"the API key secret's JSON has none of the fields {KEY_FIELDS}")
    if not text:
        raise ApiKeyUnavailable("the API key secret is empty")
    return text
