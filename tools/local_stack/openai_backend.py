"""The OpenAI API a local run talks to: the local OpenAI-compatible server, or the real one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local_openai.faults import ScriptedFault
from local_openai.server import LocalOpenAIServer

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
# The local server checks this bearer token, so the handler's key handling is exercised too.
LOCAL_API_KEY = "sk-local-completion-tagger"


@dataclass(frozen=True)
class OpenAIBackend:
    """Where the handler sends API calls, with which key, and (locally) the server to seed and count."""

    base_url: str
    api_key: str = field(repr=False)
    server: LocalOpenAIServer | None = None

    @property
    def description(self) -> str:
        """A printable description; never includes the key."""
        if self.server is not None:
            return f"local OpenAI server at {self.base_url}"
        return f"OpenAI API at {self.base_url}"

    def seed(self, completions: Mapping[str, Mapping[str, str]]) -> None:
        """Store the sample completions (local server only)."""
        if self.server is None:
            raise RuntimeError("completions can only be seeded on the local server")
        for completion_id, metadata in completions.items():
            self.server.seed_completion(completion_id=completion_id, metadata=dict(metadata))

    def script_faults(self, faults: Sequence[ScriptedFault]) -> None:
        """Queue one-shot faults on the local server (local server only)."""
        if self.server is None:
            raise RuntimeError("faults can only be scripted on the local server")
        self.server.app.push_faults(faults)

    def api_stats(self) -> dict[str, Any] | None:
        """The local server's request counts; None for the real API."""
        return self.server.stats() if self.server is not None else None


@contextmanager
def local_backend(latency: float = 0.0, error_rate: float = 0.0, seed: int | None = None) -> Iterator[OpenAIBackend]:
    """Start the local OpenAI server on a free loopback port for the duration of the block."""
    server = LocalOpenAIServer(api_key=LOCAL_API_KEY, latency=latency, error_rate=error_rate, seed=seed)
    with server:
        yield OpenAIBackend(base_url=server.base_url, api_key=LOCAL_API_KEY, server=server)


@contextmanager
def real_backend(api_key: str, base_url: str | None) -> Iterator[OpenAIBackend]:
    """The real API (`OPENAI_BASE_URL`, default api.openai.com) with the caller's key; nothing to start."""
    yield OpenAIBackend(base_url=(base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/"), api_key=api_key)
