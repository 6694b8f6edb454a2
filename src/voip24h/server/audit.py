"""The audit trail writer: requests are queued on the hot path and written in batches.

Recording a request is an append of one tuple to a list; a background task writes
what piled up every ``FLUSH_SECONDS`` (or sooner when a batch fills), so the request
path never waits for the audit table. If the database is down, entries wait (up to
``MAX_PENDING``) and the rest are dropped and counted in
``voip24h_audit_dropped_total``. Old rows are pruned hourly.

The write itself is kept nearly free of Python work and off any thread, because the
server's workers are CPU-bound: a worker thread running Python holds the GIL for up to
5 ms each time the event loop releases it (socket writes, SQLite steps), which costs
the request path far more than the audit's own CPU. So every backend's batch is written
on the event loop by the driver's appender (db/drivers): PostgreSQL rows with one
binary COPY, MariaDB rows with one bulk execute of binary rows, and SQLite rows with
one sqlite3 ``executemany`` of plain tuples, a millisecond or two for a full batch,
since its commit goes to the WAL without waiting for the disk; the checkpoint that does
wait for the disk runs in a thread every ``CHECKPOINT_SECONDS``.

Where the rows go is ``audit_url(settings)``: with SQLite, a sibling file by default,
because every write to the file the server reads slows its readers down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from voip24h.config import Settings
from voip24h.db.drivers import Appender, WriteBusy, make_appender
from voip24h.db.engine import backend_of, make_engine, parse_url, sqlite_path
from voip24h.db.queries import audit as audit_queries
from voip24h.db.queries.audit import COLUMNS
from voip24h.server.observability import Metrics, RequestInfo

log = logging.getLogger("voip24h.server.audit")
FLUSH_SECONDS = 0.5
BATCH = 500
MAX_PENDING = 20_000
PRUNE_EVERY = 3600.0
PARAMS_CHARS = 1000


def audit_url(settings: Settings) -> str:
    """The database of the audit trail: ``audit_database_url`` when set; for a SQLite
    ``FILE.db`` the sibling ``FILE-audit.db``; otherwise the main database."""
    if settings.audit_database_url:
        return settings.audit_database_url
    url = settings.database_url
    if backend_of(url) == "sqlite":
        path = sqlite_path(url)
        if path != ":memory:" and not path.startswith("file:"):
            file = Path(path)
            sibling = file.with_name(f"{file.stem}-audit{file.suffix}")
            return parse_url(url).set(database=str(sibling)).render_as_string(hide_password=False)
    return url


def audit_engine(settings: Settings, **options: Any) -> Engine:
    """An engine on the audit database, with the audit table created there if it is
    not the main database (which gets it from the migrations)."""
    url = audit_url(settings)
    return _engine_with_table(url, url != settings.database_url, **options)


def _engine_with_table(url: str, own_table: bool, **options: Any) -> Engine:
    """An engine on ``url``; with ``own_table``, the audit table created there first."""
    engine = make_engine(url, **options)
    if own_table:
        try:
            with engine.begin() as conn:
                audit_queries.create_table(conn)
        except Exception:
            engine.dispose()
            raise
    return engine


def audit_params(data: Any) -> str:
    """Request parameters as short JSON, with any secret-looking key removed."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if "secret" not in str(k).lower()}
    text = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode() if data is not None else ""
    return text if len(text) <= PARAMS_CHARS else text[: PARAMS_CHARS - 1] + "…"


WRITE_TIMEOUT = 5.0
CHECKPOINT_SECONDS = 10.0
BUSY_PAUSE = 0.02  # seconds before retrying a SQLite batch another worker's write blocked
BUSY_RETRIES = 50


def audit_values(info: RequestInfo) -> tuple[Any, ...]:
    """One audit row, in ``COLUMNS`` order."""
    return (
        info.at,
        info.request_id,
        info.partner_id,
        info.partner,
        info.request_type,
        audit_params(info.params),
        info.rows,
        info.status,
        info.error_code[:40],
        round(info.latency_ms, 3),
        info.client[:64],
    )


def audit_row(info: RequestInfo) -> dict[str, Any]:
    """One audit row as a column -> value mapping."""
    return dict(zip(COLUMNS, audit_values(info), strict=True))


class AuditWriter:
    """Queues audit rows and writes them in the background."""

    def __init__(
        self, database_url: str, retention_days: int, metrics: Metrics, *, own_table: bool = False
    ):
        """``own_table``: the database is not the migrated main one; create the table."""
        self._url = database_url
        self._own_table = own_table
        self._retention = timedelta(days=retention_days)
        self._metrics = metrics
        self._backend = backend_of(database_url)
        self._pending: list[tuple[Any, ...]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._last_prune = 0.0
        self._closing = False
        self._appender: Appender | None = None  # made with the first batch
        self._last_checkpoint = time.monotonic()
        self._busy = 0

    def record(self, info: RequestInfo) -> None:
        """Queue one request (O(1), never blocks, never raises)."""
        if len(self._pending) >= MAX_PENDING:
            self._metrics.audit_dropped.inc()
            return
        self._pending.append(audit_values(info))
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="voip24h-audit")

    async def close(self) -> None:
        """Write what is queued (bounded by a few seconds), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        if self._appender is not None:
            await self._appender.close()
        if self._engine is not None:
            self._engine.dispose()

    async def flush(self) -> None:
        """Write everything queued, including what arrives meanwhile (tests and shutdown)."""
        while self._pending:
            if not await self._write_batch():
                return

    async def _write_queued(self) -> None:
        """Write the rows queued when called. Rows that arrive during the writes wait for
        the next round: chasing them would write a few rows at a time, non-stop, each
        batch a transaction of its own (one disk flush each on MariaDB)."""
        owed = len(self._pending)
        while owed > 0 and self._pending:
            owed -= min(owed, BATCH)
            if not await self._write_batch():
                return

    async def _run(self) -> None:
        while not self._closing:
            if not self._last_prune or time.monotonic() - self._last_prune > PRUNE_EVERY:
                self._last_prune = time.monotonic()  # at start, then hourly
                await self._prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self._write_queued()
            appender = self._appender
            due = time.monotonic() - self._last_checkpoint > CHECKPOINT_SECONDS
            if appender is not None and appender.needs_checkpoint and due:
                await self._checkpoint(appender)
        await self.flush()

    async def _write_batch(self) -> bool:
        batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
        try:
            await self._append(batch)
        except WriteBusy:
            self._pending[:0] = batch
            self._busy += 1
            if self._busy < BUSY_RETRIES:
                await asyncio.sleep(BUSY_PAUSE)
                return True
            self._busy = 0
            log.warning("audit write waits: another process holds %s", self._url)
            await asyncio.sleep(1.0)
            return False
        except Exception as exc:
            log.warning("audit write failed (%d entries kept): %s", len(batch), exc)
            room = MAX_PENDING - len(self._pending)
            if room < len(batch):
                self._metrics.audit_dropped.inc(len(batch) - room)
            self._pending[:0] = batch[:room]
            if not self._closing:
                await asyncio.sleep(1.0)
            return False
        self._busy = 0
        return True

    @classmethod
    def for_settings(cls, settings: Settings, metrics: Metrics) -> AuditWriter:
        """The writer for the configured audit database (see ``audit_url``)."""
        url = audit_url(settings)
        return cls(
            url, settings.audit_retention_days, metrics, own_table=url != settings.database_url
        )

    def _get_engine(self) -> Engine:
        if self._engine is None:
            options: dict[str, Any] = {}
            if not self._url.startswith("sqlite"):
                options = {
                    "pool_size": 1,
                    "max_overflow": 1,
                    "pool_timeout": 5,
                    "connect_args": {"connect_timeout": 5},
                }
            self._engine = _engine_with_table(self._url, self._own_table, **options)
        return self._engine

    async def _append(self, batch: list[tuple[Any, ...]]) -> None:
        if self._appender is None:
            if self._own_table:
                await asyncio.to_thread(self._get_engine)  # creates the table once
            self._appender = make_appender(
                self._url, audit_queries.append_statement(), WRITE_TIMEOUT
            )
        if self._backend == "sqlite":
            # How SQLAlchemy stores DateTime in SQLite ("%Y-%m-%d %H:%M:%S.%f"), 5x faster.
            batch = [(row[0].isoformat(" ", "microseconds"), *row[1:]) for row in batch]
        await self._appender.append(batch)

    async def _checkpoint(self, appender: Appender) -> None:
        """Copy the SQLite WAL into the file (the only write that waits for the disk)."""
        self._last_checkpoint = time.monotonic()
        try:
            await appender.checkpoint()
        except Exception as exc:
            log.warning("audit checkpoint failed: %s", exc)

    async def _prune(self) -> None:
        from voip24h.service.answers import utcnow

        before = utcnow() - self._retention
        try:
            removed = await asyncio.to_thread(self._delete_before, before)
        except Exception as exc:
            log.warning("audit prune failed: %s", exc)
            return
        if removed:
            log.info("audit: pruned %d rows older than %s", removed, before)

    def _delete_before(self, before: Any) -> int:
        with self._get_engine().begin() as conn:
            return audit_queries.prune(conn, before)
