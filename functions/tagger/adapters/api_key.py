"""Where the OpenAI API key comes from: Secrets Manager (cached per container) or, locally, the env."""

from __future__ import annotations

import json
import threading

from aws_lambda_powertools.utilities.parameters import SecretsProvider

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
                # The provider's message never contains the secret value, only its id.
                raise ApiKeyUnavailable(f"could not read the API key secret: {type(error).__name__}") from None
        return _key_from_secret(value)


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
