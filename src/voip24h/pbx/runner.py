"""The PBX link as a job: one per database, elected through a lease, live events to the outbox.

Every ``voip24h serve`` worker (and ``voip24h pbx``) with ``ami_url`` set runs a
:class:`PbxRunner`; only the holder of the ``pbx-link`` lease opens the AMI link, so
one conversation gives one set of events however many processes run. The holder renews
the lease every third of its time; if it cannot (the database is down, another took
it), it closes the link, and another process takes over once the lease expires.
Nothing here blocks the event loop: the lease and the outbox talk to the database in
threads, the link only reads a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from voip24h.config import Settings
from voip24h.db.queries import leases
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.pbx.connection import AmiConnection
from voip24h.pbx.link import PbxLink
from voip24h.pbx.live import EVENTS, LiveCalls
from voip24h.pbx.outbox import LiveOutbox
from voip24h.pbx.protocol import Message
from voip24h.pbx.target import AmiTarget, parse_ami_url

log = logging.getLogger(__name__)
LEASE = "pbx-link"
# The Login's event classes: call (channels, dials, bridges, OriginateResponse) and cdr;
# not dialplan (VarSet, Newexten: most of a busy PBX's events). Client side, only the
# events live calls, makeDial and the link read are parsed.
LOGIN_EVENTS = "call,cdr"
WANTED = EVENTS | {"OriginateResponse", "Shutdown", "FullyBooted"}


def holder_name() -> str:
    """Who holds a lease: host, process and a random part (pids repeat across hosts)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class PbxRunner:
    """Elects itself through the lease, then keeps the link up and its events flowing."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        holder: str | None = None,
        lease_seconds: float = 15.0,
        outbox: LiveOutbox | None = None,
        dispose_engine: bool = False,
        **link_options: Any,
    ):
        self.settings = settings
        self.target: AmiTarget = parse_ami_url(settings.ami_url)
        self.matcher = ExtensionMatcher(settings.extension_pattern, settings.extensions)
        self.live = LiveCalls(self.matcher.of_channel)
        self.outbox = outbox or LiveOutbox(engine)
        self.holder = holder or holder_name()
        self.lease_seconds = lease_seconds
        self._engine = engine
        self._dispose_engine = dispose_engine
        self._link_options = link_options
        self._link: PbxLink | None = None
        self._link_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def leader(self) -> bool:
        """True while this process holds the lease and runs the link."""
        return self._link is not None

    @property
    def link(self) -> PbxLink | None:
        """The link while this process leads, else None."""
        return self._link

    @property
    def connection(self) -> AmiConnection | None:
        """The logged-in AMI session, if this process has one now."""
        return self._link.connection if self._link is not None else None

    def on_event(self, message: Message) -> None:
        """The link's listener: AMI event -> live events -> outbox queue (no I/O)."""
        self.outbox.put(self.live.feed(message))

    def stop(self) -> None:
        """Ask :meth:`run` to close the link, give the lease up and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Hold or wait for the lease, and run the link while holding it, until stopped."""
        writer = asyncio.create_task(self.outbox.run(), name="voip24h-pbx-outbox")
        try:
            while not self._stopping.is_set():
                if await self._acquire():
                    if self._link is None:
                        self._lead()
                elif self._link is not None:
                    log.warning("PBX link: lease %r lost; closing the link", LEASE)
                    await self._follow()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.lease_seconds / 3):
                        await self._stopping.wait()
        finally:
            was_leader = self._link is not None
            await self._follow()
            if was_leader:
                with contextlib.suppress(SQLAlchemyError):
                    await asyncio.to_thread(leases.release, self._engine, LEASE, self.holder)
            self.outbox.stop()
            await writer
            if self._dispose_engine:
                self._engine.dispose()

    async def _acquire(self) -> bool:
        ttl = timedelta(seconds=self.lease_seconds)
        try:
            return await asyncio.to_thread(
                leases.acquire, self._engine, LEASE, self.holder, datetime.now(UTC), ttl
            )
        except SQLAlchemyError as exc:
            log.warning("PBX link: cannot reach the database for the lease: %s", type(exc).__name__)
            return False

    def _lead(self) -> None:
        log.info(
            "PBX link: this process (%s) holds the lease; connecting to %s",
            self.holder,
            self.target.masked(),
        )
        self.live.reset()
        options = {"events": LOGIN_EVENTS, "wanted": WANTED, **self._link_options}
        link = PbxLink(
            self.target,
            listeners=[self.on_event],
            on_connect=lambda _connection: self.live.reset(),
            **options,
        )
        self._link = link
        self._link_task = asyncio.create_task(link.run(), name="voip24h-pbx-link")

    async def _follow(self) -> None:
        link, task = self._link, self._link_task
        self._link = self._link_task = None
        if link is not None and task is not None:
            link.stop()
            await task


def runner_for(settings: Settings) -> PbxRunner | None:
    """The runner a server starts beside the partner API; None without ``ami_url`` or
    when the link runs in its own process (``pbx_link_in_serve`` false)."""
    if not settings.ami_url or not settings.pbx_link_in_serve:
        return None
    from voip24h.db.engine import make_engine

    return PbxRunner(settings, make_engine(settings.database_url), dispose_engine=True)


@contextlib.asynccontextmanager
async def running(runner: PbxRunner | None) -> AsyncIterator[None]:
    """Run ``runner`` (if any) in the background for the duration of the block."""
    if runner is None:
        yield
        return
    task = asyncio.create_task(runner.run(), name="voip24h-pbx")
    try:
        yield
    finally:
        runner.stop()
        try:
            await task
        except Exception:
            log.exception("PBX link job failed")
