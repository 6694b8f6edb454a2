"""Keeps one AMI session up: logs in, pings, reconnects with backoff, survives PBX restarts.

:meth:`PbxLink.run` never raises for a PBX problem (down, restarting, wrong secret,
silent): it logs it, waits the next backoff delay and tries again, until :meth:`stop`.
A refused login is logged once as an error for a run of refusals, not once a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence

from voip24h.pbx.backoff import Backoff
from voip24h.pbx.connection import AmiConnection, AmiError, AuthenticationFailed, Listener
from voip24h.pbx.protocol import ProtocolError
from voip24h.pbx.target import AmiTarget

log = logging.getLogger(__name__)


class PbxLink:
    """A supervised AMI link to one PBX; every event goes to each listener, in order."""

    def __init__(
        self,
        target: AmiTarget,
        *,
        listeners: Sequence[Listener] = (),
        backoff: Backoff | None = None,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        stable_after: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        on_connect: Callable[[AmiConnection], None] | None = None,
        events: str = "on",
        wanted: frozenset[str] | None = None,
    ):
        self.target = target
        self.backoff = backoff or Backoff()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.stable_after = stable_after
        self._listeners = list(listeners)
        self._ssl_context = ssl_context
        self._on_connect = on_connect
        self._events, self._wanted = events, wanted
        self._connection: AmiConnection | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self.logins = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self.retry_delays: deque[float] = deque(maxlen=100)

    @property
    def connection(self) -> AmiConnection | None:
        """The live session, or None while (re)connecting."""
        connection = self._connection
        return connection if connection is not None and not connection.closed else None

    async def wait_connected(self, timeout: float | None = None) -> AmiConnection:
        """The live session, waiting up to ``timeout`` seconds for one (TimeoutError)."""
        async with asyncio.timeout(timeout):
            while True:
                connection = self.connection
                if connection is not None:
                    return connection
                self._connected.clear()
                await self._connected.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to close the session and return."""
        self._stopping.set()
        if self._connection is not None:
            self._connection.abort()

    async def run(self) -> None:
        """Connect, keep the session up and reconnect until :meth:`stop`."""
        refused = False
        while not self._stopping.is_set():
            try:
                connection = await AmiConnection.open(
                    self.target,
                    listeners=self._listeners,
                    timeout=self.connect_timeout,
                    ssl_context=self._ssl_context,
                    events=self._events,
                    wanted=self._wanted,
                )
            except AuthenticationFailed as exc:
                self._failed(exc)
                if not refused:
                    log.error("%s; retrying with backoff", exc)
                refused = True
            except (OSError, TimeoutError, AmiError, ProtocolError, ssl.SSLError) as exc:
                self._failed(exc)
                log.warning("PBX %s unreachable: %s", self.target.masked(), _describe(exc))
            else:
                if refused:
                    log.info("AMI login to %s accepted again", self.target.masked())
                refused = False
                await self._hold(connection)
            if not self._stopping.is_set():
                delay = self.backoff.next()
                self.retry_delays.append(delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        self._connected.set()

    async def _hold(self, connection: AmiConnection) -> None:
        """Serve one session until it closes or stops answering Pings."""
        self.logins += 1
        self._connection = connection
        self._connected.set()
        if self._stopping.is_set():  # stop() came while the session was being opened
            connection.abort()
        started = time.monotonic()
        log.info("PBX link up: %s (AMI %s)", self.target.masked(), connection.version)
        if self._on_connect is not None:
            try:
                self._on_connect(connection)
            except Exception:
                log.exception("PBX on_connect hook failed")
        pinger = asyncio.get_running_loop().create_task(self._keepalive(connection))
        try:
            reason = await connection.wait_closed()
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            await connection.close()
            self._connection = None
        if time.monotonic() - started >= self.stable_after:
            self.backoff.reset()
        if not self._stopping.is_set():
            log.warning("PBX link to %s lost: %s", self.target.masked(), _describe(reason))

    async def _keepalive(self, connection: AmiConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await connection.send([("Action", "Ping")], timeout=self.ping_timeout)
            except TimeoutError:
                connection.abort(TimeoutError(f"no Pong within {self.ping_timeout} s"))
                return
            except AmiError:
                return

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = exc


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "closed"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
