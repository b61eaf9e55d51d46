"""moto in server mode, in-process on loopback, reached only through boto3's standard `AWS_ENDPOINT_URL`.

Nothing in the local stack passes `endpoint_url=` to a client: the handler creates its own boto3
clients at import time exactly as it does on Lambda, so the environment is the one switch that
points every client (ours and the handler's) at moto.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from local_stack.account import REGION

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

LOOPBACK = "127.0.0.1"

# Variables that would send a client somewhere other than moto, or lend it real credentials.
_CLEARED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CA_BUNDLE",
)


class AtomicDynamoDBWrites:
    """WSGI middleware: DynamoDB requests one at a time, as DynamoDB's own per-item atomicity requires.

    DynamoDB checks a conditional write's condition and applies the write as one step, which is what the
    per-completion lease relies on. moto's server handles requests on threads with no lock around that
    check-then-write, so two conditional writes to one item at once could both pass. DynamoDB calls take
    a few ms here, so running them one at a time costs little; other services (SQS long polls) stay
    concurrent.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))  # the whole response, inside the lock


class _MotoServer(ThreadedMotoServer):
    """moto's threaded server, with DynamoDB's writes made atomic again (`AtomicDynamoDBWrites`)."""

    def _server_entry(self) -> None:
        app = AtomicDynamoDBWrites(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoEndpoint:
    """A moto server on a free loopback port (the OS picks it), for the lifetime of a `with` block."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self._server = _MotoServer(ip_address=host, port=port, verbose=False)
        self._url: str | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the value for `AWS_ENDPOINT_URL`."""
        if self._url is None:
            raise RuntimeError("the moto server is not started")
        return self._url

    def start(self) -> MotoEndpoint:
        # werkzeug logs every request at INFO on stderr unless its logger already has a level.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._url is not None:
            self._server.stop()
            self._url = None

    def __enter__(self) -> MotoEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def aws_environment(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """The variables that make any boto3 client (ours or the handler's) talk to moto with fake keys."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # A developer's ~/.aws config could name another endpoint or region per profile.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def apply_environment(variables: Mapping[str, str], environ: os._Environ[str] | None = None) -> None:
    """Set `variables` and clear what would override them (per-service endpoints, profiles, tokens)."""
    env = os.environ if environ is None else environ
    for name in list(env):
        if name.startswith("AWS_ENDPOINT_URL_") or name in _CLEARED_VARIABLES:
            del env[name]
    env.update(variables)


@contextmanager
def moto_environment(region: str = REGION) -> Iterator[MotoEndpoint]:
    """Start moto, point the process environment at it, and put the environment back afterwards."""
    saved = dict(os.environ)
    with MotoEndpoint() as endpoint:
        try:
            apply_environment(aws_environment(endpoint.url, region))
            yield endpoint
        finally:
            os.environ.clear()
            os.environ.update(saved)
