"""Indexes that an initial load builds once at its end, not row by row.

Keeping an index up to date row by row is most of a bulk load's database time
(the row keys are digests: each insert lands on a random page of
``ux_cdr_row_key``, and on a large table every such page is a write), while
building it from the finished table is a sort, many times cheaper. So an import
into an empty ``cdr`` table drops the secondary indexes of ``call_records``,
``ix_cdr_calldate`` and the unique ``ux_cdr_row_key``, loads, and creates them
again (``voip24h import --keep-indexes`` opts out).

Only ``ix_cdr_callid`` stays: it finds the calls a batch continues, and with
them the keys already stored, which is how duplicates are skipped while the
unique index is away (a row's key determines its conversation). A marker in
``voip24h_meta`` says the others are missing, and is cleared only once they all
exist again, so an import killed mid-way leaves a database that the next import,
``voip24h db upgrade`` or ``voip24h serve`` completes. Meanwhile reads are right
but slow (full scans), and other writers (follow, sync) complete it first.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, Index, delete, exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from voip24h.db.queries import meta as meta_queries
from voip24h.db.schema import call_records, cdr, meta

MARKER = "indexes_deferred"
KEPT = frozenset({"ix_cdr_callid"})
ROW_KEY_INDEX = "ux_cdr_row_key"


def deferrable() -> list[Index]:
    """The indexes a bulk load builds at its end, in creation order (the unique one
    first: should a concurrent writer have stored a row twice, it is found early)."""
    tables = (cdr, call_records)
    found = [ix for table in tables for ix in sorted(table.indexes, key=_name)]
    found.sort(key=lambda ix: not ix.unique)
    return [ix for ix in found if ix.name not in KEPT]


def keys_indexed(conn: Connection) -> bool:
    """False while the unique row-key index is deferred (inserts cannot rely on it)."""
    deferred = meta_queries.get(conn, MARKER)
    return deferred is None or ROW_KEY_INDEX not in deferred.split(",")


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
        try:
            with engine.begin() as conn:
                index.create(conn)
        except IntegrityError:
            if index.name != ROW_KEY_INDEX:
                raise
            with engine.begin() as conn:
                drop_duplicate_rows(conn)
                index.create(conn)
        created.append(_name(index))
    if created:
        analyze(engine)
    with engine.begin() as conn:
        conn.execute(meta.delete().where(meta.c.key == MARKER))
    return created


def drop_duplicate_rows(conn: Connection) -> int:
    """Delete all but the first row of each row key; how many were deleted.

    Run only when the unique index cannot be built: loads skip stored keys, so it is
    a second writer that stored a row again while the index was away. Their records are
    not touched: a call's records come from its rows, and its rows are unchanged.
    """
    first = select(func.min(cdr.c.id)).group_by(cdr.c.row_key)
    if conn.dialect.name == "mysql":  # cannot select from the table it deletes from
        first = select(first.subquery().c[0])
    return int(conn.execute(delete(cdr).where(cdr.c.id.not_in(first))).rowcount)


def analyze(engine: Engine, *, early: bool = False) -> None:
    """Refresh the planner's statistics of the loaded tables (cheap: sampled).

    ``early``: an import's first batches into an empty table, whose statistics still
    say "empty" (autovacuum may be off or late), so the planner scans where it should
    use an index: on MariaDB the engine-independent statistics are collected too
    (``PERSISTENT FOR ALL``, a scan of the few rows there are).
    """
    mariadb = bool(getattr(engine.dialect, "is_mariadb", False))
    statements = {
        # analysis_limit: look at a sample of each index, not every row (fast on 10M rows).
        "sqlite": ["PRAGMA analysis_limit=1000", "ANALYZE cdr", "ANALYZE call_records"],
        "postgresql": ["ANALYZE cdr", "ANALYZE call_records"],
        "mysql": [
            "ANALYZE TABLE cdr, call_records PERSISTENT FOR ALL"
            if early and mariadb
            else "ANALYZE TABLE cdr, call_records"
        ],
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
