"""``voip24h sync``: copy a PBX's own CDR table into the server, incrementally, read-only.

Why a copy and not reading the PBX's table in place: the partner API answers from
``call_records`` (one row per callId and user, indexed by user and time), which
the PBX's table does not have and must not be given (we never write or index the
source); the PBX database may be on another host, another engine, or down while
the API must stay up. The copy is cheap: rows are idempotent by their row key.

How new rows are found without an id column (FreePBX's table has none) and
without missing late ones: Asterisk writes a CDR when the call ends, with
``calldate`` = when it began, so new rows land at old times. Each poll counts
the source's rows per time value over a window (``lookback``, default 6 hours,
before the newest time seen) and fetches only the times whose count differs
from what was already copied. A call longer than the lookback that ends after
the window moved past its start is not seen by the poll loop: raise
``--lookback``, or run ``voip24h sync --once --since DATE`` to sweep again.

Restarts: the newest time copied is kept in ``voip24h_meta`` (committed with each
batch); a restart re-reads the window before it, skipping duplicates. A source or
server database that goes away is retried with a backoff, and the work resumes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Table, create_engine, event
from sqlalchemy.engine import make_url

from voip24h.db import faults
from voip24h.db.engine import backend_of, sync_url
from voip24h.db.queries import meta as meta_queries
from voip24h.db.queries import source_cdr
from voip24h.domain import cdr
from voip24h.ingest.layouts import COLUMN_SIZES
from voip24h.ingest.loader import Loader, batched
from voip24h.ingest.rejects import RejectsWriter

log = logging.getLogger(__name__)
DEFAULT_LOOKBACK = timedelta(hours=6)


def source_engine(url: str) -> Engine:
    """An engine on the PBX database whose sessions are read-only and autocommit.

    Autocommit: each poll sees rows committed since the last one (MariaDB's
    REPEATABLE READ would otherwise keep showing one snapshot).
    """
    backend = backend_of(url)
    if backend not in ("mysql", "postgresql"):
        raise ValueError("the source must be a MariaDB/MySQL or PostgreSQL URL")
    options: dict[str, Any] = {"pool_pre_ping": True, "isolation_level": "AUTOCOMMIT"}
    if backend == "postgresql":
        options["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    engine = create_engine(sync_url(url), **options)
    if backend == "mysql":

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


def state_key(url: str, table: str) -> str:
    """The meta key of one source table (host, port, database and table; no password)."""
    parsed = make_url(url)
    where = f"{parsed.host}:{parsed.port}/{parsed.database}/{table}"
    return "sync:" + hashlib.sha256(where.encode()).hexdigest()[:40]


def normalize_source_row(
    raw: Mapping[str, Any], zone: Any, aliases: Mapping[str, str]
) -> dict[str, Any]:
    """A source row as a ``cdr`` row: aliases applied, aware times in the PBX zone."""
    row: dict[str, Any] = {}
    for name, value in raw.items():
        name = aliases.get(name, name)
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        elif isinstance(value, float) and name in ("duration", "billsec"):
            value = round(value)  # some setups store seconds as FLOAT
        row[name] = value
    out = cdr.normalize(row, zone)
    for name, size in COLUMN_SIZES.items():
        if len(out[name]) > size:
            raise ValueError(f"too long: {name} has {len(out[name])} characters, holds {size}")
    return out


@dataclass
class SyncStats:
    copied: int = 0
    duplicates: int = 0
    rejected: int = 0
    untenanted: int = 0
    polls: int = 0
    errors: int = 0
    newest: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "untenanted": self.untenanted,
            "polls": self.polls,
            "errors": self.errors,
            "newest": self.newest.isoformat(sep=" ") if self.newest else None,
        }


@dataclass
class Syncer:
    """Keeps the server's cdr/call_records in step with one source table."""

    loader: Loader
    source_url: str
    table_name: str = "cdr"
    lookback: timedelta = DEFAULT_LOOKBACK
    aliases: Mapping[str, str] = field(default_factory=dict)
    rejects: RejectsWriter = field(default_factory=lambda: RejectsWriter(None))
    batch_size: int = 2000
    stats: SyncStats = field(default_factory=SyncStats)

    def __post_init__(self) -> None:
        self.engine = source_engine(self.source_url)
        self.key = state_key(self.source_url, self.table_name)
        self._table: Table | None = None
        self._time: Column[Any] | None = None
        self._seen: dict[Any, int] = {}  # time value -> rows of it already copied
        self._caught_up = False

    # -- state ------------------------------------------------------------------------------

    def saved_newest(self) -> datetime | None:
        """The newest source time copied, as committed in the server database."""
        with self.loader.engine.connect() as conn:
            value = meta_queries.get(conn, self.key)
        return datetime.fromisoformat(value) if value else None

    def _window_start(self) -> datetime | None:
        newest = self.stats.newest
        return None if newest is None else _naive(newest) - self.lookback

    # -- work -------------------------------------------------------------------------------

    def _source(self) -> tuple[Table, Column[Any]]:
        if self._table is None or self._time is None:
            with self.engine.connect() as conn:
                self._table, self._time = source_cdr.reflect(conn, self.table_name)
        return self._table, self._time

    def catch_up(
        self,
        since: datetime | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        """Copy every row from the saved window on (all rows the first time), streamed.

        ``progress(rows_read, total)`` is called after each batch (``total`` counted
        once up front, only when a progress callback is given).
        """
        table, time_column = self._source()
        if since is None:
            saved = self.saved_newest()
            self.stats.newest = saved
            since = None if saved is None else saved - self.lookback
        self._seen.clear()
        total = None
        if progress is not None:
            with self.engine.connect() as conn:
                total = source_cdr.count_since(conn, time_column, since)
            progress(0, total)
        read = 0
        # A server-side cursor (streaming) needs a transaction: a read-only one here.
        with self.engine.connect() as auto:
            conn = auto.execution_options(isolation_level="READ COMMITTED")
            conn.begin()
            rows = source_cdr.rows_since(conn, table, time_column, since, self.batch_size)
            for batch in batched(rows, self.batch_size):
                for when, n in self._load(batch, time_column.name).items():
                    self._seen[when] = self._seen.get(when, 0) + n
                read += len(batch)
                if progress is not None:
                    progress(read, total)
        self._caught_up = True

    def poll(self) -> int:
        """Copy rows written since the last poll; return how many were new."""
        if not self._caught_up:
            before = self.stats.copied
            self.catch_up()
            return self.stats.copied - before
        table, time_column = self._source()
        since = self._window_start()
        with self.engine.connect() as conn:
            counts = source_cdr.counts_since(conn, time_column, since)
            changed = sorted(when for when, n in counts.items() if self._seen.get(when) != n)
            rows = source_cdr.rows_at(conn, table, time_column, changed) if changed else []
        self.stats.polls += 1
        before = self.stats.copied
        for batch in batched(rows, self.batch_size):
            self._load(batch, time_column.name)
        for when in changed:  # also times whose rows were all rejected or deleted
            self._seen[when] = counts[when]
        low = self._window_start()
        if low is not None:
            for when in [w for w in self._seen if _naive(w) < low]:
                del self._seen[when]
        return self.stats.copied - before

    def _load(self, raw_rows: Iterable[dict[str, Any]], time_name: str) -> dict[Any, int]:
        """Load source rows in one transaction (with the newest time); rows per time value."""
        good: list[dict[str, Any]] = []
        origins: list[tuple[int, bytes]] = []
        counted: dict[Any, int] = {}
        newest = self.stats.newest
        for raw in raw_rows:
            when = raw.get(time_name)
            counted[when] = counted.get(when, 0) + 1
            try:
                good.append(normalize_source_row(raw, self.loader.zone, self.aliases))
                origins.append((0, repr(_printable(raw)).encode()))
            except ValueError as exc:
                self.stats.rejected += 1
                self.rejects.write(
                    f"{self.table_name}", 0, str(exc), repr(_printable(raw)).encode()
                )
            if isinstance(when, datetime) and (newest is None or _naive(when) > newest):
                newest = _naive(when)

        def save(conn: Any) -> None:
            if newest is not None and newest != self.stats.newest:
                meta_queries.put(conn, self.key, newest.isoformat(sep=" "))

        # Rows the server's database refuses for their data are rejected, the rest loaded.
        stats, refused = self.loader.load_or_split(self.loader.encode_batch(good, origins), save)
        for refusal in refused:
            self.stats.rejected += 1
            self.rejects.write(self.table_name, 0, refusal.reason, refusal.raw)
        self.rejects.flush()
        self.stats.copied += stats.inserted
        self.stats.duplicates += stats.duplicates
        self.stats.untenanted += stats.untenanted
        self.stats.newest = newest
        return counted

    def run(
        self,
        interval: float = 1.0,
        should_stop: Callable[[], bool] = lambda: False,
        on_poll: Callable[[SyncStats], None] | None = None,
    ) -> SyncStats:
        """Poll until ``should_stop()``; outages are logged and retried with backoff.

        A full disk on the server's database raises ``faults.DatabaseFull``; a data
        error that splitting a batch did not absorb is raised, never retried.
        """
        backoff = interval
        while not should_stop():
            try:
                self.poll()
                backoff = interval
                self.stats.last_error = None
            except Exception as exc:
                faults.retry_or_raise(exc)
                self.stats.errors += 1
                self.stats.last_error = faults.message(exc)
                log.warning("database error (retrying in %.0fs): %s", backoff, faults.message(exc))
                self.engine.dispose()
                self.loader.engine.dispose()
                self._caught_up = False  # re-read the window: the lost batch is read again
                backoff = min(backoff * 2, 10.0)
            if on_poll:
                on_poll(self.stats)
            deadline = time.monotonic() + backoff
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(min(0.1, backoff))
        return self.stats

    def close(self) -> None:
        self.engine.dispose()


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo is not None else moment


def _printable(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items()}
