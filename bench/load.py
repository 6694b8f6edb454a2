"""Loading a bench dataset through the project's own import path.

SQLite is loaded from the Master.csv by ``voip24h import`` itself, run as a command
(an initial load: it builds the read-side indexes at its end), and the load's rate and
peak memory are reported. PostgreSQL and MariaDB receive the same tables copied from
that SQLite file (COPY / LOAD DATA), so every backend serves byte-identical data.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from voip24h.db import migrate
from voip24h.db.engine import make_engine
from voip24h.db.schema import CDR_COLUMNS, call_records

CDR_INSERT_COLUMNS = (*CDR_COLUMNS, "row_key")
RECORD_COLUMNS = tuple(c.name for c in call_records.columns)


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


def load_sqlite(csv_path: Path, db_path: Path, log: Any = print) -> dict[str, Any]:
    """Build ``db_path`` from the Master.csv with ``voip24h import``; return its figures.

    The import runs as a real command (bench/import_bench.py ``run_file``): rows,
    records, seconds, rows/s and the peak RSS of the importing process and its worker.
    """
    from bench.dataset import master_csv_columns
    from bench.import_bench import run_file

    tmp = db_path.with_suffix(".loading")
    log(f"  voip24h import {csv_path.name} (an initial load: indexes are built at the end)")
    result = run_file(csv_path, tmp, master_csv_columns().split())
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.replace(db_path)
    figures = {
        "rows": result["imported"],
        "records": result["records"],
        "seconds": result["import_seconds"],
        "rows_per_s": result["import_rows_per_s"],
        "peak_rss_mib": result["import_peak_rss_mib"],
        "peak_rss_main_mib": result["import_peak_rss_main_mib"],
        "peak_rss_worker_mib": result["import_peak_rss_worker_mib"],
    }
    load_figures_path(db_path).write_text(json.dumps(figures))
    return figures


def load_figures_path(db_path: Path) -> Path:
    """Where the figures of the load that built a cached dataset are kept."""
    return db_path.with_name(db_path.stem + ".load.json")


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
