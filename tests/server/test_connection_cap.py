"""The cap on connections per worker (max_connections): beyond it, at once, the 503
server_busy -1 envelope with Retry-After (uvicorn's own answer was plain text); below
it, normal clients are served while many slow clients hold connections open."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import orjson
import pytest
import uvicorn

from tests.conftest import API
from voip24h.server.app import create_app
from voip24h.server.protocol import TimedH11Protocol

SAFETY = 20  # no socket read waits longer than this (the test would hang otherwise)
SLOW = 200


class PatientProtocol(TimedH11Protocol):
    header_timeout = 60.0  # slow clients stay for the whole test


@pytest.fixture
def serve(settings) -> Iterator[Callable[[int], int]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def _start(cap: int) -> int:
        app = create_app(settings.replace(client_timeout_seconds=60.0))
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            http=PatientProtocol,
            access_log=False,
            limit_concurrency=cap,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        return int(server.servers[0].sockets[0].getsockname()[1])

    yield _start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=15)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SAFETY)


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def ask(port: int, secret: str) -> tuple[str, dict[str, str], dict]:
    """One partner request on a new connection: status line, headers, JSON body."""
    body = orjson.dumps(
        {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    )
    with connect(port) as sock:
        sock.sendall(
            b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        answer = read_all(sock)
    head, _, payload = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return lines[0], headers, orjson.loads(payload)


def hold_slow(stack: ExitStack, port: int, count: int) -> None:
    """``count`` connections that sent their headers and a few bytes of a 100-byte body."""
    for _ in range(count):
        sock = stack.enter_context(connect(port))
        sock.sendall(
            b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"req'
        )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_beyond_the_cap_a_request_gets_the_server_busy_envelope(serve, add_partner, load):
    from tests.builders import cdr_row

    load(cdr_row())
    secret = add_partner()
    port = serve(20)
    with ExitStack() as stack:
        hold_slow(stack, port, 25)
        time.sleep(0.3)  # let the server accept them all
        status, headers, body = ask(port, secret)
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "1"
    assert body == {
        "respCode": -1,
        "respMsg": "The server has too many connections open; retry shortly.",
        "errorCode": "server_busy",
    }
    # Once the slow clients are gone, the same request is served.
    deadline = time.monotonic() + SAFETY
    while (answer := ask(port, secret))[0] != "HTTP/1.1 200 OK":
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)
    assert answer[2]["respCode"] == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_normal_clients_are_served_while_many_slow_connections_are_open(serve, add_partner, load):
    from tests.builders import cdr_row

    load(cdr_row())
    secret = add_partner()
    port = serve(1000)  # the default max_connections
    with ExitStack() as stack:
        hold_slow(stack, port, SLOW)
        answers = [ask(port, secret) for _ in range(50)]
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 50
    assert all(len(a[2]["data"]) == 1 for a in answers)
