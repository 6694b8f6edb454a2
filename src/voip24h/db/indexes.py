"""Read-side indexes that an initial load builds once at its end, not row by row.

Only the partner API's reads use the secondary indexes of ``call_records`` and
``ix_cdr_calldate``; keeping them up to date row by row is most of a bulk load's
database time, while building them from the finished tables is a sort, several
times cheaper. So an import into an empty ``cdr`` table drops them, loads, and
creates them again (``voip24h import --keep-indexes`` opts out).

The indexes the load itself needs stay: ``cdr.row_key`` (unique: what makes a
re-import skip duplicates) and ``ix_cdr_uniqueid`` (finds the calls a batch
continues). A marker in ``voip24h_meta`` says the others are missing, and is
cleared only once they all exist again, so an import killed mid-way leaves a
database that the next import, ``voip24h db upgrade`` or ``voip24h serve``
completes. Meanwhile reads are right but slow (full scans).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, Index, exists, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from voip24h.db.queries import meta as meta_queries
from voip24h.db.schema import call_records, cdr, meta

MARKER = "indexes_deferred"
KEPT = frozenset({"ix_cdr_uniqueid"})


def deferrable() -> list[Index]:
    """The indexes a bulk load builds at its end, in creation order."""
    tables = (cdr, call_records)
    found = [ix for table in tables for ix in sorted(table.indexes, key=_name)]
    return [ix for ix in found if ix.name not in KEPT and not ix.unique]


def is_deferred(engine: Engine) -> bool:
    """True while an import has the read-side indexes dropped (or died doing so)."""
    try:
        with engine.connect() as conn:
            return meta_queries.get(conn, MARKER) is not None
    except (OperationalError, ProgrammingError):
        return False  # no schema yet: nothing was deferred


def cdr_is_empty(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not conn.scalar(select(exists().select_from(cdr)))


def defer(engine: Engine) -> None:
    """Drop the deferrable indexes; the marker is written before the first drop."""
    with engine.begin() as conn:
        meta_queries.put(conn, MARKER, ",".join(_name(ix) for ix in deferrable()))
    with engine.begin() as conn:
        for index in deferrable():
            index.drop(conn, checkfirst=True)


def restore(engine: Engine, progress: Callable[[str], None] | None = None) -> list[str]:
    """Create the deferrable indexes that are missing and clear the marker.

    Returns the names of the indexes it created (none when nothing was deferred).
    """
    if not is_deferred(engine):
        return []
    created = []
    for index in deferrable():
        with engine.begin() as conn:
            if _exists(conn, index):
                continue
            if progress:
                progress(_name(index))
            index.create(conn)
            created.append(_name(index))
    if created:
        analyze(engine)
    with engine.begin() as conn:
        conn.execute(meta.delete().where(meta.c.key == MARKER))
    return created


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics of the loaded tables (cheap: sampled)."""
    statements = {
        # analysis_limit: look at a sample of each index, not every row (fast on 10M rows).
        "sqlite": ["PRAGMA analysis_limit=1000", "ANALYZE cdr", "ANALYZE call_records"],
        "postgresql": ["ANALYZE cdr", "ANALYZE call_records"],
        "mysql": ["ANALYZE TABLE cdr, call_records"],
    }[engine.dialect.name]
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement).close()


def _exists(conn: object, index: Index) -> bool:
    from sqlalchemy import inspect

    table = index.table
    assert table is not None
    names = {ix["name"] for ix in inspect(conn).get_indexes(table.name)}
    return index.name in names


def _name(index: Index) -> str:
    return str(index.name)
