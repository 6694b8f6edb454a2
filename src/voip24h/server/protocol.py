"""uvicorn's HTTP/1.1 protocol with a header read timeout (slowloris).

uvicorn closes a keep-alive connection idle after an answer, but a connection that
sends nothing, or its request headers a byte at a time, is kept open for ever: a few
thousand of them use up the worker's file descriptors. This protocol gives every
connection ``client_timeout_seconds`` to deliver a complete request head, from the
moment it connects and again after each answer; a client that started a request gets
the 408 -1 envelope, a silent one is just closed. The body has its own limit
(server/handlers.py:read_body).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from voip24h import errors
from voip24h.config import Settings, env_name

_SETTING = "client_timeout_seconds"


def _timeout_response() -> bytes:
    late = errors.RequestTimeout("The request headers were not received in time.")
    body = errors.envelope_bytes(late.message, late.error_code)
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class TimedH11Protocol(H11Protocol):
    """H11Protocol closing connections that do not send a request head in time."""

    # Set by cli/serving.py for one process; workers read it from the environment.
    header_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = type(self).header_timeout
        if timeout is None:
            raw = os.environ.get(env_name(_SETTING))
            timeout = float(raw) if raw else Settings.client_timeout_seconds
        self._header_timeout = timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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
        pending, _closed = self.conn.trailing_data
        if pending and self.conn.their_state == h11.IDLE:
            self.transport.write(_timeout_response())
        self.transport.close()
