"""The cap on connections per worker (max_connections). Over it, the oldest connection
that waits for its client (a slow head or body, an idle keep-alive) is closed to make
room, with the 408 envelope if it had started a request: slow clients cannot shut out
the others. When every place is taken by requests being answered, a new request gets,
at once, the 503 server_busy -1 envelope with Retry-After (uvicorn's own answer was
plain text)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import orjson
import pytest
import uvicorn

from tests.conftest import API
from voip24h.server.app import create_app
from voip24h.server.protocol import TimedProtocol

SAFETY = 20  # no socket read waits longer than this (the test would hang otherwise)
SLOW = 2000  # the figure: twice the default max_connections


class PatientProtocol(TimedProtocol):
    header_timeout = 60.0  # slow clients stay for the whole test


class Held:
    """Wraps the app: requests for /held wait until ``release`` is set (requests being
    answered, as when the database is slow), the others go to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.release = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/held":
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


@pytest.fixture
def serve(settings) -> Iterator[Callable[[int], tuple[int, Held]]]:
    servers: list[tuple[uvicorn.Server, threading.Thread, Held]] = []

    def _start(cap: int) -> tuple[int, Held]:
        app = Held(create_app(settings.replace(client_timeout_seconds=60.0)))
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
        servers.append((server, thread, app))
        return int(server.servers[0].sockets[0].getsockname()[1]), app

    yield _start
    for server, thread, app in servers:
        app.release.set()
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
def test_when_every_place_is_being_answered_a_request_gets_server_busy(serve, add_partner, load):
    from tests.builders import cdr_row

    load(cdr_row())
    secret = add_partner()
    port, app = serve(20)
    with ExitStack() as stack:
        for _ in range(25):  # 25 requests being answered (held), over a cap of 20
            sock = stack.enter_context(connect(port))
            sock.sendall(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)  # let the server take them all
        status, headers, body = ask(port, secret)
        app.release.set()
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "1"
    assert headers["connection"] == "close"
    assert body == {
        "respCode": -1,
        "respMsg": "The server has too many connections open; retry shortly.",
        "errorCode": "server_busy",
    }
    # Once the held requests are answered, the same request is served.
    deadline = time.monotonic() + SAFETY
    while (answer := ask(port, secret))[0] != "HTTP/1.1 200 OK":
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)
    assert answer[2]["respCode"] == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_over_the_cap_slow_clients_make_room_for_normal_ones(serve, add_partner, load):
    """Was: slow clients holding every place made every normal request fail."""
    from tests.builders import cdr_row

    load(cdr_row())
    secret = add_partner()
    port, _app = serve(50)
    with ExitStack() as stack:
        slow = []
        for _ in range(120):  # more slow bodies than places
            sock = stack.enter_context(connect(port))
            sock.sendall(
                b"POST " + API.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"req'
            )
            slow.append(sock)
        answers = [ask(port, secret) for _ in range(50)]
        shed = read_all(slow[0])  # the oldest slow client was closed for the others
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 50
    head, _, payload = shed.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert orjson.loads(payload)["errorCode"] == "request_timeout"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_normal_clients_are_served_while_many_slow_connections_are_open(serve, add_partner, load):
    from tests.builders import cdr_row

    load(cdr_row())
    secret = add_partner()
    port, _app = serve(1000)  # the default max_connections
    with ExitStack() as stack:
        hold_slow(stack, port, SLOW)
        answers = [ask(port, secret) for _ in range(50)]
    assert [a[0] for a in answers] == ["HTTP/1.1 200 OK"] * 50
    assert all(len(a[2]["data"]) == 1 for a in answers)
