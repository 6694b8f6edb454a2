"""Slow clients on a real uvicorn server: a request head or body that arrives too slowly
gets the 408 -1 envelope and its connection closed, a silent connection is closed, and
the server keeps answering everyone else meanwhile."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn

from tests.conftest import API
from voip24h.server.app import create_app
from voip24h.server.protocol import TimedProtocol

LIMIT = 0.5  # client_timeout_seconds in these tests
SAFETY = 10  # a socket read never waits longer than this (the test would hang otherwise)


class QuickTimeout(TimedProtocol):
    header_timeout = LIMIT


@pytest.fixture
def port(settings) -> Iterator[int]:
    app = create_app(settings.replace(client_timeout_seconds=LIMIT))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", http=QuickTimeout, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(timeout=15)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def envelope_of(response: bytes) -> tuple[str, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), orjson.loads(body)


def healthy(port: int) -> bool:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        return read_all(sock).startswith(b"HTTP/1.1 200")


def test_a_slow_request_head_gets_408_and_is_closed(port):
    with connect(port) as slow:
        slow.sendall(b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\n")  # never finished
        assert healthy(port)  # others are served meanwhile
        status, body = envelope_of(read_all(slow))
    assert status == "HTTP/1.1 408 Request Timeout"
    assert body == {
        "respCode": -1,
        "respMsg": "The request headers were not received in time.",
        "errorCode": "request_timeout",
    }


def test_a_connection_that_sends_nothing_is_closed(port):
    with connect(port) as silent:
        assert read_all(silent) == b""  # closed by the server, no answer to no request


def test_a_slow_body_gets_408_and_is_closed(port):
    with connect(port) as slow:
        slow.sendall(
            b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"requestType\""
        )
        assert healthy(port)
        status, body = envelope_of(read_all(slow))
    assert status == "HTTP/1.1 408 Request Timeout"
    assert body["respCode"] == -1 and body["errorCode"] == "request_timeout"
    assert body["respMsg"] == "The request body was not received within 0.5 seconds."


def test_a_keep_alive_connection_still_serves_requests_after_the_first(port):
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')
        # Idle after its answers, it is closed in the end (no request started: no 408).
        assert read_all(sock) == b""


def test_a_request_head_over_16_kib_gets_431_and_a_big_body_does_not(port):
    with connect(port) as big:
        big.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        status, body = envelope_of(read_all(big))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert body == {
        "respCode": -1,
        "respMsg": "The request line and headers are over 16 KiB.",
        "errorCode": "header_too_large",
    }
    # Head and a 60 KB body in one write: only the head counts.
    payload = b'{"requestType": "getUser", "partnerSecret": "x", "data": {"user": "' + (
        b"1" * 60_000
    ) + b'"}}'
    with connect(port) as sock:
        sock.sendall(
            b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )  # fmt: skip
        status, body = envelope_of(read_all(sock))
    assert status != "HTTP/1.1 431 Request Header Fields Too Large"
    assert body["respCode"] == -1 and body["errorCode"] != "header_too_large"
