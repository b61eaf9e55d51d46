"""``LocalOpenAIServer``: run the local OpenAI-compatible server in a background thread and drive it
from Python (tests, the local stack) without going through HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from local_openai.error_responses import ErrorResponse
from local_openai.faults import ScriptedFault
from local_openai.handler import LocalHTTPServer
from local_openai.knobs import Knobs
from local_openai.request_pipeline import LocalOpenAIApp


class LocalOpenAIServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        error_rate: float = 0.0,
        seed: int | None = None,
        burst_429_every: int = 0,
        burst_429_length: int = 0,
        retry_after: float = 1.0,
        seed_completions: Iterable[Mapping[str, Any]] = (),
        verbose: bool = False,
    ) -> None:
        """Knobs given here are the ones ``reset()`` returns to; so are the ``seed_completions``.

        ``port=0`` picks a free port at ``start()``; a restart after ``stop()`` reuses that port.
        """
        knobs = Knobs(
            api_key=api_key,
            latency=latency,
            latency_jitter=latency_jitter,
            error_rate=error_rate,
            seed=seed,
            burst_429_every=burst_429_every,
            burst_429_length=burst_429_length,
            retry_after=retry_after,
        )
        self.host = host
        self._port = port
        self._verbose = verbose
        try:
            self.app = LocalOpenAIApp(knobs, seed_completions=seed_completions)
        except ErrorResponse as error:
            raise ValueError(f"invalid seed completion: {error.message}") from None
        self._httpd: LocalHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----

    def start(self) -> LocalOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("the local OpenAI server is already running")
        httpd = LocalHTTPServer((self.host, self._port), self.app, verbose=self._verbose)
        self._port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="local-openai", daemon=True
        )
        self._httpd = httpd
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections; the stored state is kept for a restart."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> LocalOpenAIServer:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- addresses -----

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("the port is chosen at start(); start the server first")
        return self._port

    @property
    def root_url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind is reached via loopback
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``."""
        return f"{self.root_url}/v1"

    @property
    def admin_url(self) -> str:
        return f"{self.root_url}/_local"

    # ----- control -----

    def configure(self, **knobs: Any) -> None:
        """Change knobs at run time (``latency``, ``error_rate``, ``api_key``, ...); ``ValueError`` if invalid."""
        self.app.configure(knobs)

    def inject_fault(
        self,
        status: int | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        completion_id: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        delay: float | None = None,
        action: Literal["reset"] | None = None,
        reason: Literal["quota"] | None = None,
    ) -> None:
        """Queue a one-shot fault for the next ``count`` /v1 requests matching ``method``/``completion_id``."""
        fault = ScriptedFault(
            status=status,
            count=count,
            method=method,
            completion_id=completion_id,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            delay=delay,
            action=action,
            reason=reason,
        )
        self.app.push_faults([fault])

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def seed_completion(
        self,
        completion_id: str | None = None,
        metadata: dict[str, str] | None = None,
        *,
        model: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Store a completion directly (replacing one with the same id) and return it."""
        spec: dict[str, Any] = {"id": completion_id, "metadata": metadata, "model": model}
        spec.update(messages=messages, created=created)
        try:
            return self.app.seed_completion(spec)
        except ErrorResponse as error:
            raise ValueError(error.message) from None

    def completion(self, completion_id: str) -> dict[str, Any] | None:
        return self.app.store.get(completion_id)

    def metadata_of(self, completion_id: str) -> dict[str, str]:
        """The stored metadata of a completion; ``KeyError`` when it is not stored."""
        completion = self.app.store.get(completion_id)
        if completion is None:
            raise KeyError(completion_id)
        return dict(completion["metadata"])

    def stats(self) -> dict[str, Any]:
        """``total``, ``requests`` (by route template), ``statuses``, ``faults``,
        ``updates_by_completion``, ``arrivals`` (epoch seconds of each /v1 request), ``stored_completions``
        and ``pending_faults``."""
        return self.app.stats_snapshot()

    def reset(self) -> None:
        """Clear store, faults and stats; knobs and seeded completions back to construction values."""
        self.app.reset()
