"""The server's door to the database: a bound on requests waiting for a connection, and
the outage log (one line when the database goes down, one when it is back).

Wraps the Reader every request reads through; db/drivers/ itself stays unaware of both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect

from voip24h import errors
from voip24h.db.drivers import Reader, Statement
from voip24h.db.drivers.base import budget

log = logging.getLogger("voip24h.db")
OUTAGE_LOG_SECONDS = 30.0  # while an outage lasts, its count is logged this often


class Outage:
    """Tracks one database outage at a time: its start, failed requests and end.

    A dead database fails every request; logging each would bury the log (and cost the
    time of a write per request), so the outage is logged once when it starts, then as
    a count every ``every`` seconds while it lasts, and once when the first request
    succeeds again, with the count and the duration.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, every: float = OUTAGE_LOG_SECONDS
    ) -> None:
        self._clock = clock
        self._every = every
        self._logged = 0.0
        self._past = 0.0  # seconds of the outages that ended
        self.started: float | None = None
        self.failed = 0
        self.outages = 0  # outages begun since the process started
        self.failed_total = 0

    @property
    def down(self) -> bool:
        return self.started is not None

    def failure(self, error: errors.ApiError) -> None:
        """A request failed with database_unavailable."""
        now = self._clock()
        if self.started is None:
            self.started = self._logged = now
            self.failed = 0
            self.outages += 1
            log.warning(
                "database outage started: %s (%s)", error.error_code, error.__cause__ or error
            )
        elif now - self._logged >= self._every:
            self._logged = now
            log.warning(
                "database outage going on for %.0f s; %d requests failed so far (%s)",
                now - self.started,
                self.failed,
                error.__cause__ or error,
            )
        self.failed += 1
        self.failed_total += 1

    def success(self) -> None:
        """A database call succeeded: ends the outage, if one is going on."""
        if self.started is None:
            return
        seconds = self._clock() - self.started
        self._past += seconds
        log.warning("database outage ended after %.1f s; %d requests failed", seconds, self.failed)
        self.started = None

    def seconds(self) -> float:
        """How long the current outage has lasted (0 when the database is up)."""
        return 0.0 if self.started is None else self._clock() - self.started

    def total_seconds(self) -> float:
        """Time spent in outages since the process started, the current one included."""
        return self._past + self.seconds()


class GatedReader(Reader):
    """``reader`` with at most ``limit`` calls at once (the pool plus its waiting line);
    more are refused with database_busy at once instead of queueing without end.

    With ``slots`` (the pool's size) and ``wait_seconds``, a call also waits at most
    ``wait_seconds`` for one of the pool's connections, then gets database_busy; and
    when no connection was taken or given back for ``wait_seconds`` while all are busy,
    at once. So a frozen database holds the pool's few calls until their statement
    timeout, and answers the others within ``wait_seconds``, most of them at once.
    """

    def __init__(
        self,
        reader: Reader,
        limit: int,
        outage: Outage,
        *,
        slots: int | None = None,
        wait_seconds: float | None = None,
    ) -> None:
        super().__init__(reader.timeout)
        self._reader = reader
        self._limit = limit
        self.outage = outage
        self.active = 0
        self.refused = 0
        self._wait = wait_seconds
        self._moved = 0.0  # when a connection was last taken or given back
        self._slots = (
            asyncio.Semaphore(slots) if slots is not None and wait_seconds is not None else None
        )

    @property
    def renders_json(self) -> bool:  # type: ignore[override]
        return self._reader.renders_json

    @property
    def dialect(self) -> Dialect:
        return self._reader.dialect

    def prepare(self, key: Any, build: Any) -> Statement:
        return self._reader.prepare(key, build)

    def _enter(self) -> None:
        if self.active >= self._limit:
            self.refused += 1
            raise errors.DatabaseBusy()
        self.active += 1

    async def _take_slot(self) -> None:
        """Wait for one of the pool's connections, at most ``wait_seconds``."""
        if self._slots is None:
            return
        assert self._wait is not None
        if not self._slots.locked():  # a connection is free: no wait, whatever the deadline
            await self._slots.acquire()
            self._moved = time.monotonic()
            return
        if time.monotonic() - self._moved >= self._wait:
            # Every connection busy and none taken or given back for wait_seconds: the
            # database is stuck (frozen); waiting would only end in the same refusal.
            self.refused += 1
            raise errors.DatabaseBusy()
        try:
            await asyncio.wait_for(self._slots.acquire(), budget(self._wait))
        except TimeoutError:
            self.refused += 1
            raise errors.DatabaseBusy() from None
        self._moved = time.monotonic()

    def _give_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._moved = time.monotonic()

    def _failed(self, exc: errors.ApiError) -> None:
        if isinstance(exc, errors.DatabaseUnavailable):
            self.outage.failure(exc)

    async def fetch(self, statement: Statement, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        self._enter()
        try:
            await self._take_slot()
            try:
                rows = await self._reader.fetch(statement, params)
            finally:
                self._give_slot()
        except errors.DatabaseBusy:
            raise
        except errors.ApiError as exc:
            self._failed(exc)
            raise
        finally:
            self.active -= 1
        self.outage.success()
        return rows

    async def stream(
        self, statement: Statement, params: Mapping[str, Any], chunk_rows: int
    ) -> AsyncIterator[list[Sequence[Any]]]:
        self._enter()
        try:
            await self._take_slot()
            try:
                async for rows in self._reader.stream(statement, params, chunk_rows):
                    self.outage.success()
                    yield rows
            finally:
                self._give_slot()
        except errors.DatabaseBusy:
            raise
        except errors.ApiError as exc:
            self._failed(exc)
            raise
        finally:
            self.active -= 1

    async def start(self) -> None:
        await self._reader.start()

    async def close(self) -> None:
        await self._reader.close()
