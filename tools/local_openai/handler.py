"""HTTP plumbing: a keep-alive (HTTP/1.1) threading server that adapts sockets to the app.

Every response has a Content-Length so clients can reuse connections. Request logging is off unless
``verbose``; it never includes headers (the Authorization header holds the API key).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from local_openai.error_responses import error_body
from local_openai.wire import Request, Response, new_request_id

if TYPE_CHECKING:
    from local_openai.request_pipeline import LocalOpenAIApp

MAX_BODY_BYTES = 16 * 1024 * 1024


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # the default backlog of 5 refuses bursts of concurrent clients

    def __init__(self, address: tuple[str, int], app: LocalOpenAIApp, *, verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, LocalOpenAIHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (timed out, was stopped) is routine; anything else is a bug to show."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            if self.verbose:
                sys.stderr.write(f"local_openai {client_address[0]}: connection lost: {sys.exc_info()[1]}\n")
            return
        super().handle_error(request, client_address)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut idle keep-alive connections down, so no handler thread outlives ``stop()``."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class LocalOpenAIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-openai"
    sys_version = ""
    timeout = 300  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the 40 ms delayed-ACK stall

    @property
    def _server(self) -> LocalHTTPServer:
        return cast(LocalHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.untrack(self.connection)

    def _handle(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = self._server.app.handle(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = Response(
                500,
                error_body("Unexpected error in the local OpenAI server.", "server_error", None, None),
                {"x-request-id": new_request_id()},
            )
        if response.reset:
            self._reset_connection()
        else:
            self._send(response)
        if self._server.verbose:
            outcome = "reset" if response.reset else str(response.status)
            elapsed_ms = (time.monotonic() - started) * 1000
            request_id = response.headers.get("x-request-id", "-")
            self.log_message('"%s %s" %s %.1fms %s', self.command, self.path, outcome, elapsed_ms, request_id)

    # Every method a served path may be asked for reaches the app, which answers 405 with ``Allow``
    # for the ones the path does not serve; a method missing here is answered 501 (not implemented).
    # The names are those BaseHTTPRequestHandler looks up (`do_<method>`).
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_QUERY = _handle  # noqa: N815

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None when an error was already sent."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError(raw_length)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "Invalid Content-Length")
            return None
        if length > MAX_BODY_BYTES:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.send_error(HTTPStatus.BAD_REQUEST, "Invalid chunked body")
                return None
            total += size
            if total > MAX_BODY_BYTES:
                self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _send(self, response: Response) -> None:
        payload = b"" if response.body is None else response.encoded_body()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":  # a response to HEAD has headers only
            self.wfile.write(payload)

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset and no response at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # the descriptor really closes (RST) once rfile is closed in finish()
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (malformed request, unsupported method) in the API's JSON shape."""
        self.close_connection = True
        status = HTTPStatus(code)
        body = error_body(message or status.phrase, "invalid_request_error", None, None)
        self._send(Response(code, body, {"x-request-id": new_request_id(), "Connection": "close"}))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by ``_handle`` (with timing and request id), only when verbose."""

    def log_message(self, format: str, *args: Any) -> None:
        if self._server.verbose:
            sys.stderr.write(f"local_openai {self.address_string()} {format % args}\n")
