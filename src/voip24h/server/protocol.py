"""uvicorn's httptools HTTP/1.1 protocol with a header read timeout (slowloris).

uvicorn closes a keep-alive connection idle after an answer, but a connection that
sends nothing, or its request headers a byte at a time, is kept open for ever: a few
thousand of them use up the worker's file descriptors. This protocol gives every
connection ``client_timeout_seconds`` to deliver a complete request head, from the
moment it connects and again after each answer; a client that started a request gets
the 408 -1 envelope, a silent one is just closed. The body has its own limit
(server/handlers.py:read_body).

It also enforces the connection cap (``max_connections``) itself. A connection that
takes the worker over the cap makes room: the oldest connection waiting for its client
(idle, or sending its request slowly) is closed. With none to close, a request over the
cap is answered at once with the 503 ``server_busy`` -1 envelope and ``Retry-After``,
without its body being read (uvicorn's own ``limit_concurrency`` answers plain text).

A request head over MAX_HEAD_BYTES gets the 431 -1 envelope. The parser is httptools
(llhttp, in C): uvicorn's pure-Python h11 costs a third of a small request's time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voip24h import errors
from voip24h.config import Settings, env_name

_SETTING = "client_timeout_seconds"
log = logging.getLogger("voip24h.server")
BUSY_LOG_SECONDS = 10.0  # refusals over the cap are logged at most this often, as a count
MAX_HEAD_BYTES = 16_384  # the request line and headers


class _Tally:
    """Counts events of the connection cap; a warning the first time, then a count every
    BUSY_LOG_SECONDS while it goes on (one line, not one per request)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.total = 0
        self.unlogged = 0
        self.logged_at = -BUSY_LOG_SECONDS

    def note(self, cap: int) -> None:
        self.total += 1
        self.unlogged += 1
        now = time.monotonic()
        if now - self.logged_at >= BUSY_LOG_SECONDS:
            log.warning(
                "over max_connections (%d): %d %s (%d since the worker started)",
                cap,
                self.unlogged,
                self.what,
                self.total,
            )
            self.unlogged, self.logged_at = 0, now


def _open(connections: Any) -> int:
    """Connections not closing already (one closed to make room leaves the set only on
    the next turn of the event loop)."""
    return sum(1 for c in connections if not c.transport.is_closing())


_ARRIVALS: weakref.WeakKeyDictionary[Any, dict[Any, None]] | None = None


def _arrivals(server_state: Any) -> dict[Any, None]:
    """The open connections of one server, in the order they arrived (made lazily)."""
    global _ARRIVALS
    if _ARRIVALS is None:
        _ARRIVALS = weakref.WeakKeyDictionary()
    order = _ARRIVALS.get(server_state)
    if order is None:
        order = _ARRIVALS[server_state] = {}
    return order


def _busy_response() -> tuple[dict[str, Any], bytes]:
    busy = errors.ServerBusy()
    body = errors.envelope_bytes(busy.message, busy.error_code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", busy.headers["Retry-After"].encode()),
        (b"connection", b"close"),
    ]
    return {"type": "http.response.start", "status": busy.status, "headers": headers}, body


def _closing_response(status: str, error: errors.ApiError) -> bytes:
    """A whole HTTP answer carrying ``error``'s -1 envelope, closing the connection."""
    body = errors.envelope_bytes(error.message, error.error_code)
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def _timeout_response(message: str = "The request headers were not received in time.") -> bytes:
    return _closing_response("408 Request Timeout", errors.RequestTimeout(message))


class TimedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol closing connections that do not send a request head in time."""

    # Set by cli/serving.py for one process; workers read it from the environment.
    header_timeout: float | None = None
    # One per process each, made when first needed: requests refused, connections shed.
    refusals: _Tally | None = None
    sheds: _Tally | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = type(self).header_timeout
        if timeout is None:
            raw = os.environ.get(env_name(_SETTING))
            timeout = float(raw) if raw else Settings.client_timeout_seconds
        self._header_timeout = timeout
        self._header_timer: asyncio.TimerHandle | None = None
        # A request of this connection has begun (its first byte parsed) and is not
        # yet complete; _head_bytes counts its head (URL and headers, from the parser)
        # until the head is complete, _head_fed the bytes read meanwhile.
        self._begun = False
        self._head_bytes: int | None = None
        self._head_fed = 0
        # The cap on connections (and requests) this worker serves at once, checked by
        # _capped below instead of by uvicorn, whose 503 is plain text.
        self._cap = self.limit_concurrency
        self.limit_concurrency = None
        if self._cap is not None:
            self.app = self._capped(self.app)

    def _capped(self, app: Any) -> Any:
        """``app``, unless this worker is over its cap: then the server_busy envelope."""
        state = self.server_state
        cap = self._cap
        assert cap is not None

        async def capped(scope: Any, receive: Any, send: Any) -> None:
            # As uvicorn counts: this connection is among the open ones, and this
            # request's task among the running ones.
            connections = state.connections
            over = len(connections) > cap and _open(connections) > cap
            # Tasks of connections just closed end a few turns later: only twice the cap
            # in tasks (requests whose clients left, still running) refuses on its own.
            if scope["type"] == "http" and (over or len(state.tasks) > 2 * cap):
                cls = type(self)
                if cls.refusals is None:
                    cls.refusals = _Tally("requests answered 503 server_busy")
                cls.refusals.note(cap)
                start, body = _busy_response()
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await app(scope, receive, send)

        return capped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._order = _arrivals(self.server_state)
        self._order[self] = None
        self._arm()
        if self._cap is not None and len(self.server_state.connections) > self._cap:
            self._make_room(self._cap)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_bytes is not None and not self.transport.is_closing():
            # A head still incomplete after these bytes: count them, so that a huge head
            # is refused before the parser holds it all (at most one read over the limit).
            self._head_fed += len(data)
            if self._head_fed > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        self._head_bytes = self._head_fed = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        if self._head_bytes is not None:
            self._head_bytes += size
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        if self.transport.is_closing():
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._begun = False
        super().on_message_complete()

    def _refuse_head(self) -> None:
        if not self.transport.is_closing():
            too_big = errors.RequestHeadTooLarge()
            self.transport.write(_closing_response("431 Request Header Fields Too Large", too_big))
            self.transport.close()

    def _make_room(self, cap: int) -> None:
        """Over the cap, close the oldest connection that is not being served (idle after
        an answer, or still sending its request: a slow client), so that slow clients
        holding every place do not shut out a new one. Requests being answered are never
        cut; with none to close, the new request gets server_busy (``_capped``)."""
        # Oldest first: the first connection waiting for its client is the one (slow
        # clients are old; the scan rarely goes past the first few).
        victim = next((c for c in self._order if c is not self and c.waiting_for_client()), None)
        if victim is None:
            return
        victim.shed()
        cls = type(self)
        if cls.sheds is None:
            cls.sheds = _Tally("slow or idle connections closed to make room")
        cls.sheds.note(cap)

    def waiting_for_client(self) -> bool:
        """Whether this connection waits for its client: no request yet (or only part of
        its head), or a body still coming in that nothing was answered to yet."""
        if self.transport.is_closing():
            return False
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        return self._begun and not cycle.response_started

    def shed(self) -> None:
        """Close this connection for another one; a started request gets the 408."""
        cycle = self.cycle
        unanswered = cycle is None or cycle.response_complete or not cycle.response_started
        if self._head_bytes is not None or (self._begun and unanswered):
            message = "The request was not received in time (the server needed the connection)."
            self.transport.write(_timeout_response(message))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        order = getattr(self, "_order", None)
        if order is not None:
            order.pop(self, None)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being read or answered: its head came in time
        if self.transport.is_closing():
            return
        if self._head_bytes is not None:  # part of a head came: the client learns why
            self.transport.write(_timeout_response())
        self.transport.close()
