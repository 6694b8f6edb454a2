"""Loading a bench dataset: the project's own row normalisation and CDR->record mapping,
with bulk writes so 10M rows load in minutes on 2 cores.

SQLite is loaded from the Master.csv with ``cdr.normalize`` (what ``voip24h import``
uses for every line) and ``records.records_for_call`` (the mapping every loader
uses), parsed on all cores, written with executemany with the secondary indexes
built afterwards. ``voip24h import`` itself is timed separately (bench/import_bench.py).
PostgreSQL and MariaDB receive the same tables copied from that SQLite file (COPY /
LOAD DATA), so every backend serves byte-identical data.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from voip24h import cdr
from voip24h.db import migrate
from voip24h.db.engine import make_engine
from voip24h.db.schema import CDR_COLUMNS, call_records
from voip24h.records import ExtensionMatcher, records_for_call

LAYOUT = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "peeraccount", "linkedid", "sequence",
)  # fmt: skip
AMA = {"OMIT": 1, "BILLING": 2, "DOCUMENTATION": 3, "DEFAULT": 3, "": 0}
CDR_INSERT_COLUMNS = (*CDR_COLUMNS, "row_key")
RECORD_COLUMNS = tuple(c.name for c in call_records.columns)
_ZONE_NAME = "Asia/Ho_Chi_Minh"


def _map_chunk(lines: list[str]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(_ZONE_NAME)
    matcher = ExtensionMatcher()
    cdr_rows: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    group: list[dict[str, Any]] = []
    last = None

    def flush() -> None:
        for rec in records_for_call(group, matcher, zone):
            records.append(
                (
                    rec.callid, rec.user, rec.user_num, rec.accountcode, rec.call_ts,
                    rec.call_date, rec.phone_number, rec.call_type, rec.call_status,
                    rec.direction, rec.duration, rec.billsec, rec.did, rec.linkedid,
                    rec.recordingfile,
                )
            )  # fmt: skip

    for fields in csv.reader(lines):
        raw = dict(zip(LAYOUT, fields, strict=True))
        raw["amaflags"] = AMA.get(raw["amaflags"], 0)
        row = cdr.normalize(raw, zone)
        if row["uniqueid"] != last and group:
            flush()
            group = []
        last = row["uniqueid"]
        group.append(row)
        cdr_rows.append(tuple(row[name] for name in CDR_INSERT_COLUMNS))
    if group:
        flush()
    return cdr_rows, records


def _chunks(path: Path, size: int = 20_000) -> Iterator[list[str]]:
    """Lists of CSV lines, each ending at a call boundary (uniqueid change)."""

    def uid(line: str) -> str:
        return next(csv.reader([line]))[16]

    chunk: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line in handle:
            if len(chunk) >= size and uid(line) != uid(chunk[-1]):
                yield chunk
                chunk = []
            chunk.append(line)
    if chunk:
        yield chunk


def _secondary_indexes(engine: Any, table: str) -> list[tuple[str, list[str]]]:
    """(name, columns) of the non-unique indexes the migrations gave ``table``."""
    from sqlalchemy import inspect

    return [
        (index["name"], [c for c in index["column_names"] if c])
        for index in inspect(engine).get_indexes(table)
        if not index.get("unique")
    ]


def _quote(backend: str, name: str) -> str:
    return f"`{name}`" if backend == "mysql" else f'"{name}"'


def load_sqlite(csv_path: Path, db_path: Path, log: Any = print) -> dict[str, float]:
    """Build ``db_path`` from the Master.csv; return rows, records and seconds taken."""
    started = time.perf_counter()
    tmp = db_path.with_suffix(".loading")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{tmp}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    tables = ("cdr", "call_records")
    indexes = {table: _secondary_indexes(engine, table) for table in tables}
    with engine.begin() as conn:
        for table in tables:
            for name, _ in indexes[table]:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    engine.dispose()
    conn = sqlite3.connect(tmp, isolation_level=None)
    # A scratch file until it is renamed into place: no journal needed while loading.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    cdr_cols = ", ".join(f'"{c}"' for c in CDR_INSERT_COLUMNS)
    cdr_sql = f"INSERT INTO cdr ({cdr_cols}) VALUES ({', '.join('?' * len(CDR_INSERT_COLUMNS))})"
    rec_sql = (
        f"INSERT INTO call_records ({', '.join(RECORD_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
    )
    rows = records = 0
    conn.execute("BEGIN")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for cdr_rows, recs in pool.imap(_map_chunk, _chunks(csv_path), chunksize=1):
            conn.executemany(cdr_sql, cdr_rows)
            conn.executemany(rec_sql, recs)
            rows += len(cdr_rows)
            records += len(recs)
            if rows % 1_000_000 < len(cdr_rows):
                log(f"  loaded {rows:,} rows ({time.perf_counter() - started:.0f} s)")
    conn.execute("COMMIT")
    log(f"  building indexes ({time.perf_counter() - started:.0f} s)")
    for table in tables:
        for name, index_columns in indexes[table]:
            cols = ", ".join(f'"{c}"' for c in index_columns)
            conn.execute(f"CREATE INDEX {name} ON {table} ({cols})")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    tmp.replace(db_path)
    return {"rows": rows, "records": records, "seconds": time.perf_counter() - started}


def _dump_tsv(db_path: Path, table: str, columns: tuple[str, ...], out: io.TextIOBase) -> int:
    """Write a table as MySQL LOAD DATA text (tab separated, \\N for NULL)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    count = 0
    cols = ", ".join(f'"{c}"' for c in columns)
    for row in conn.execute(f"SELECT {cols} FROM {table}"):
        out.write(
            "\t".join(
                "\\N"
                if v is None
                else str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                for v in row
            )
            + "\n"
        )
        count += 1
    conn.close()
    return count


def copy_to_server(db_path: Path, url: str, tables: tuple[str, ...], log: Any = print) -> float:
    """Create the schema at ``url`` (a fresh database) and copy ``tables`` from SQLite."""
    started = time.perf_counter()
    engine = make_engine(url, connect_args={"local_infile": True} if "mysql" in url else {})
    migrate.upgrade(engine)
    columns = {"cdr": ("id", *CDR_INSERT_COLUMNS), "call_records": RECORD_COLUMNS}
    backend = engine.dialect.name
    for table in tables:
        indexes = _secondary_indexes(engine, table)
        with engine.begin() as conn:
            for name, _ in indexes:
                if backend == "postgresql":
                    conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
                else:
                    conn.execute(text(f"DROP INDEX {name} ON {table}"))
        with tempfile.NamedTemporaryFile("w", suffix=".tsv", encoding="utf-8") as tsv:
            count = _dump_tsv(db_path, table, columns[table], tsv)  # type: ignore[arg-type]
            tsv.flush()
            log(f"  {backend}: copying {count:,} rows into {table}")
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cols = ", ".join(_quote(backend, c) for c in columns[table])
                if backend == "postgresql":
                    with open(tsv.name, encoding="utf-8") as source:
                        with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                            while block := source.read(1 << 20):
                                copy.write(block)
                else:
                    cursor.execute(
                        f"LOAD DATA LOCAL INFILE '{tsv.name}' INTO TABLE {table} "
                        f"CHARACTER SET utf8mb4 ({cols})"
                    )
                raw.commit()
            finally:
                raw.close()
        with engine.begin() as conn:
            for name, index_columns in indexes:
                cols = ", ".join(_quote(backend, c) for c in index_columns)
                conn.execute(text(f"CREATE INDEX {name} ON {table} ({cols})"))
            conn.execute(text(f"ANALYZE {'TABLE ' if backend != 'postgresql' else ''}{table}"))
    engine.dispose()
    return time.perf_counter() - started
