"""Live call events into the events outbox, so they flow to getEvents, webhooks and the
event stream like record events.

The AMI listener only appends to a list (:meth:`LiveOutbox.put`, no I/O, no await), so a
busy link never waits for the database; one task writes what piled up in a single
transaction per batch, off the event loop. A batch gathers for up to ``flush_seconds``
(0.1 s): each transaction costs the server process about a millisecond of CPU under
the GIL whatever its size, so at 10,000 AMI events/s fewer, larger ones leave the
partner API more of the process (a screen-pop is still well under a second). While
the database is down, events wait (up to ``max_pending``; older ones are then dropped
and counted) and the write is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from voip24h.db.queries.events import append_events
from voip24h.domain.partners import canonical_number
from voip24h.pbx.live import LiveEvent

log = logging.getLogger(__name__)
_ENCODER = msgspec.json.Encoder()


def outbox_row(event: LiveEvent) -> dict[str, Any]:
    """What :func:`append_events` needs for one live event: its scope columns (tenant
    from the channel's accountcode, the user, the call) and its payload."""
    payload = msgspec.json.decode(_ENCODER.encode(event))
    payload.pop("tenant", None)  # scope, not content: records do not carry it either
    payload.pop("type", None)  # the event's own type, beside its data
    if payload.get("status") is None:
        payload.pop("status", None)
    return {
        "accountcode": event.tenant,
        "user_ext": event.user,
        "user_num": canonical_number(event.user),
        "callid": event.call_id,
        "occurred_at": event.occurred_at,
        "payload": payload,
    }


class LiveOutbox:
    """Queues live events and writes them in batches; run :meth:`run` as a task."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 1000,
        flush_seconds: float = 0.1,
        max_pending: int = 100_000,
        retry_seconds: float = 1.0,
        on_written: Callable[[list[float], float], None] | None = None,
    ):
        self._engine = engine
        self._batch = batch
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._retry_seconds = retry_seconds
        self._on_written = on_written
        self._pending: deque[tuple[float, LiveEvent]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.written = 0
        self.dropped = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Events queued and not yet committed."""
        return len(self._pending)

    def put(self, events: list[LiveEvent]) -> None:
        """Queue ``events`` (from the AMI listener: never blocks)."""
        if not events:
            return
        now = time.monotonic()
        self._pending.extend((now, event) for event in events)
        excess = len(self._pending) - self._max_pending
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            if not self.dropped:
                log.error(
                    "live events outbox full (%d waiting): dropping the oldest", self._max_pending
                )
            self.dropped += excess
        self._wake.set()

    def stop(self) -> None:
        """Ask :meth:`run` to write what is queued and return."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Write queued events until :meth:`stop` (then once more, best effort)."""
        failing = False
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            # A short pause lets a burst gather into one transaction.
            if not self._stopping and len(self._pending) < self._batch:
                await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except SQLAlchemyError as exc:
                self.failures += 1
                if not failing:
                    log.error(
                        "cannot write live events (%d waiting): %s",
                        self.pending,
                        type(exc).__name__,
                    )
                failing = True
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._retry_seconds):
                        while not self._stopping:
                            await asyncio.sleep(self._retry_seconds / 10)
            else:
                if failing:
                    log.info("live events written again")
                failing = False

    async def flush(self) -> int:
        """Write one batch now; how many events it held."""
        count = min(self._batch, len(self._pending))
        if not count:
            return 0
        items = [self._pending.popleft() for _ in range(count)]
        try:
            await asyncio.to_thread(self._write, [event for _, event in items])
        except BaseException:
            self._pending.extendleft(reversed(items))  # in order, first again
            raise
        self.written += count
        if self._on_written is not None:
            self._on_written([queued for queued, _ in items], time.monotonic())
        return count

    def _write(self, events: list[LiveEvent]) -> None:
        with self._engine.begin() as conn:
            append_events(conn, [(event.type, outbox_row(event)) for event in events])
