"""`facegan serve` against slow and many clients: a whole-request deadline and a connection cap.

Loopback only; every client is bounded in count and time and stops by itself.
The server has no run (`app=None`, it answers 503 "still loading"): what is
tested here happens before any request reaches the page.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from contextlib import ExitStack, contextmanager

import pytest

from conftest import serving_in_thread
from facegan.serve import make_server


@contextmanager
def _server(**limits):
    server = make_server("127.0.0.1", 0)
    for name, value in limits.items():
        setattr(server, name, value)
    with serving_in_thread(server):
        yield server


def _closed_within(client: socket.socket, seconds: float) -> bool:
    """Whether the server closes `client` (recv gives b"" or a reset) within `seconds`."""
    readable, _, _ = select.select([client], [], [], seconds)
    if not readable:
        return False
    try:
        while client.recv(4096):
            pass  # an answer before the close (a 408/400 would do as well)
    except OSError:
        pass
    return True


def test_a_client_trickling_header_bytes_is_cut_at_the_deadline():
    """One byte every 0.3 s never lets 1 s pass in silence; the deadline counts from the start."""
    with _server(request_timeout=1.0) as server:
        request = b"GET /api/info HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 40
        with socket.create_connection(server.server_address[:2], timeout=10) as client:
            began = time.monotonic()
            cut = False
            for byte in request:  # at most 50 bytes: ~15 s if the server never cuts
                try:
                    client.sendall(bytes([byte]))
                except OSError:
                    cut = True
                    break
                if _closed_within(client, 0.3):
                    cut = True
                    break
            elapsed = time.monotonic() - began
    assert cut, "the server kept a trickling client for the whole request"
    assert elapsed < 3.0, f"cut after {elapsed:.1f} s; the deadline is 1 s"


def test_a_complete_request_within_the_deadline_is_answered():
    with _server(request_timeout=2.0) as server:
        with socket.create_connection(server.server_address[:2], timeout=10) as client:
            client.sendall(b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.0 503") or answer.startswith(b"HTTP/1.1 503")
    assert b"still loading" in answer or b"Retry-After" in answer


@pytest.mark.parametrize("cap", [6])
def test_connections_beyond_the_cap_are_refused_and_hold_no_thread(cap):
    with _server(max_connections=cap, request_timeout=5.0) as server, ExitStack() as stack:
        address = server.server_address[:2]
        threads_before = threading.active_count()
        idle = [
            stack.enter_context(socket.create_connection(address, timeout=10)) for _ in range(cap)
        ]
        deadline = time.monotonic() + 5
        while threading.active_count() < threads_before + cap and time.monotonic() < deadline:
            time.sleep(0.02)
        refused = []
        for _ in range(3):
            extra = stack.enter_context(socket.create_connection(address, timeout=10))
            extra.sendall(b"GET /api/info HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while chunk := extra.recv(4096):
                answer += chunk
            refused.append(answer)
        held = threading.active_count() - threads_before
        assert len(idle) == cap
    assert held <= cap, f"{held} threads for {cap} connections and 3 refused ones"
    for answer in refused:
        head = answer.split(b"\r\n", 1)[0]
        assert head.endswith(b" 503 Service Unavailable"), answer[:200]
        assert b"Retry-After: 1" in answer and b"too many connections" in answer
