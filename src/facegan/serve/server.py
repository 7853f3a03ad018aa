"""The HTTP side of `facegan serve`: a threading server on one `FaceApp`.

Only GET and HEAD are answered, with security headers on every response; a
server bound to loopback (the default) answers only requests addressed to
localhost (a defence against DNS rebinding). `serve` binds the port before it
loads the run, so a port in use fails at once, and loads TensorFlow only then.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO

from facegan.serve.app import FaceApp, Response, ServeError, error_response

# The page needs nothing from elsewhere: forbid everything else, so an injected
# script or a framing page gets nowhere.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class FaceServer(ThreadingHTTPServer):
    """An HTTP server for one `FaceApp` (None while the run loads: answers 503).

    Args:
        address: (host, port); port 0 picks a free one (see `url`).
        app: the application, or None to set `app` later.
    """

    daemon_threads = True  # a slow client never holds up Ctrl-C
    # A burst of connections waits in the kernel's queue instead of being reset
    # (the default backlog of 5 dropped most of 200 simultaneous requests).
    request_queue_size = 512
    # Requests being answered or waiting for the generator; beyond it: 503 + Retry-After.
    max_in_flight = 64
    # Seconds from a connection's start (or the end of its last answer) to a whole
    # request: idle, half-sent and trickling clients (a byte every few seconds) alike.
    request_timeout = 15.0
    # Open connections, each with its thread; beyond it a connection gets 503 at once.
    max_connections = 128

    def __init__(self, address: tuple[str, int], app: FaceApp | None = None):
        self.app = app
        self.admission = threading.BoundedSemaphore(self.max_in_flight)
        self._open = 0
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.loopback_only = _is_loopback(address[0])
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's full name, which can wait on
        # DNS for seconds; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def process_request(self, request, client_address) -> None:
        """A thread for the connection, or, beyond `max_connections`, a 503 and no thread."""
        with self._open_lock:
            admitted = self._open < self.max_connections
            self._open += admitted
        if not admitted:
            _refuse_connection(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: the connection is not open
            self._closed()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def _closed(self) -> None:
        with self._open_lock:
            self._open -= 1

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the browser went away mid-answer (a new page replaced the request)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: FaceServer
    server_version = "facegan"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # idle and half-sent requests end
        super().setup()
        self.deadline = time.monotonic() + self.server.request_timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        # http.server answers a TimeoutError while reading with a closed connection
        super().handle_one_request()
        self.deadline = time.monotonic() + self.server.request_timeout  # the next request's

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._send(self._admitted())

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(self._admitted(), body=False)

    def _admitted(self) -> Response:
        """The answer, or 503 when `max_in_flight` requests are already being answered."""
        if not self.server.admission.acquire(blocking=False):
            self.close_connection = True
            return error_response(
                503, "too many requests at once; try again in a moment", **{"Retry-After": "1"}
            )
        try:
            return self._answer()
        finally:
            self.server.admission.release()

    def _refuse(self) -> None:
        self._send(
            error_response(
                405,
                f"{self.command} is not allowed: this server answers only GET and HEAD",
                Allow="GET, HEAD",
            )
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _answer(self) -> Response:
        try:
            if self.server.loopback_only and not _is_local_host(self.headers.get("Host")):
                # A page elsewhere that rebinds its own name to 127.0.0.1 (DNS
                # rebinding) would send its own name as Host.
                return error_response(
                    403,
                    "this server answers only requests addressed to "
                    "localhost or a loopback address",
                )
            app = self.server.app
            if app is None:
                return error_response(
                    503, "the run is still loading; try again in a moment", **{"Retry-After": "2"}
                )
            return app.respond(self.path)
        except Exception:  # a bug: keep serving, and say where the details are
            traceback.print_exc()
            return error_response(
                500, "internal error; the traceback is in the terminal running facegan serve"
            )

    def _send(self, response: Response, body: bool = True) -> None:
        # the read deadline shortened the socket's timeout; writing gets a full one
        self.connection.settimeout(self.server.request_timeout)
        self.send_response(response.status)
        headers = {
            **_SECURITY_HEADERS,
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request, an unknown method), as JSON too."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(error_response(code, message or phrase))

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (base signature)
        pass  # a page load is ~4 requests: the terminal stays for the URL and real errors


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that fails once `handler.deadline` has passed.

    A socket timeout alone restarts with every byte received, so a client that
    sends one byte every few seconds would hold its connection (and thread)
    forever; here every read waits only for what is left of the deadline.
    """

    def __init__(self, connection: socket.socket, handler: _Handler):
        self.connection, self.handler = connection, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.connection.settimeout(left)
        return self.connection.recv_into(buffer)


def _refuse_connection(connection: socket.socket) -> None:
    """Answers 503 on a connection over the cap without waiting for (or reading) its request.

    Run in the accepting thread, so nothing here may block: the answer fits in
    a fresh socket's send buffer, and a request already received is drained so
    closing does not reset the connection before the client reads the answer.
    """
    answer = error_response(
        503, "too many connections at once; try again in a moment", **{"Retry-After": "1"}
    )
    headers = {
        **_SECURITY_HEADERS,
        "Content-Type": answer.content_type,
        "Content-Length": str(len(answer.body)),
        **answer.headers,
        "Connection": "close",
    }
    head = "HTTP/1.1 503 Service Unavailable\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    try:
        connection.setblocking(False)
        connection.sendall(head.encode("latin-1") + b"\r\n" + answer.body)
        while connection.recv(65536):
            pass
    except OSError:  # nothing (more) to read, or the client is gone
        pass


def make_server(host: str, port: int, app: FaceApp | None = None) -> FaceServer:
    """Binds `host:port` (port 0: any free port) and returns the unstarted server.

    Raises:
        ServeError: the port is in use or not allowed, or the host cannot be bound.
    """
    try:
        return FaceServer((host, port), app)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use (another facegan serve?); "
                f"choose another with --port, or --port 0 for any free one"
            ) from None
        if err.errno == errno.EACCES:
            raise ServeError(
                f"port {port} needs privileges; use a port from 1024 to 65535"
            ) from None
        reason = err.strerror or str(err)
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None


def serve(
    run_dir: str | Path | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    prepare: Callable[[], object] | None = None,
    out: TextIO | None = None,
    label_names: str | None = None,
    model: str | None = None,
) -> None:
    """Serves the page for the run in `run_dir` until Ctrl-C (KeyboardInterrupt propagates).

    Args:
        run_dir: a run directory with at least one checkpoint (None with `model`).
        model: a shipped model's name instead of a run (`facegan models`).
        host: the address to listen on; the default answers this machine only.
        port: the TCP port; 0 picks a free one.
        prepare: called after the port is bound and before TensorFlow loads
            (the CLI imports TensorFlow quietly there).
        out: where the URL is printed (default stdout).
        label_names: class names for this serving only (`facegan.load`'s).

    Raises:
        UserError: a missing run, a run without checkpoints, a port in use.
    """
    from facegan.artifacts.rundir import open_model, open_run_dir

    out = out or sys.stdout
    # a wrong path or name fails before anything else
    open_model(model) if model is not None else open_run_dir(run_dir)
    server = make_server(host, port)
    try:
        if prepare is not None:
            prepare()
        from facegan.artifacts.run import load

        app = FaceApp(load(run_dir, model=model, label_names=label_names))
        app.warm_up()
        server.app = app
        print(
            f"facegan serve: {'model' if app.run.shipped else 'run'} {app.run.name} at step "
            f"{app.run.step} on {server.url}  (Ctrl-C stops)",
            file=out,
            flush=True,
        )
        if not server.loopback_only:
            print(
                f"facegan serve: listening on {host}: anyone who can reach this machine "
                f"can use the page",
                file=out,
                flush=True,
            )
        server.serve_forever()
    finally:
        server.server_close()


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_local_host(header: str | None) -> bool:
    """Whether a Host header names this machine (a missing one: a non-browser client)."""
    if not header:
        return True
    host = header.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return _is_loopback(host) or host.lower().endswith(".localhost")
