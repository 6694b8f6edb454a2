"""An import into an empty table refreshes the planner's statistics after its first
batches (PostgreSQL, MariaDB): planned as an empty table, the first 100k rows into
PostgreSQL took 146 s instead of 12 s. ``--keep-indexes`` here: the end of a deferred
load analyzes anyway, so only the early ANALYZE can have made these statistics."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from tests.masterfiles import call, layout_columns, line
from voip24h.cli.importing import import_cmd

COLUMNS = layout_columns(True, True, True)


def statistics(engine, backend: str) -> object:
    """What the planner knows of cdr: the time of the last ANALYZE (PostgreSQL), or the
    engine-independent row count (MariaDB's mysql.table_stats); None when nothing."""
    with engine.connect() as conn:
        if backend == "postgresql":
            return conn.scalar(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'cdr'")
            )
        return conn.scalar(
            text(
                "SELECT cardinality FROM mysql.table_stats "
                "WHERE db_name = DATABASE() AND table_name = 'cdr'"
            )
        )


def forget_statistics(engine, backend: str) -> None:
    """As a new database has none (the test database lives for the whole session)."""
    with engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text("SELECT pg_stat_reset_single_table_counters('cdr'::regclass)"))
        else:
            conn.execute(text("DELETE FROM mysql.table_stats WHERE db_name = DATABASE()"))


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_first_import_leaves_the_planner_statistics_of_its_rows(
    backend, db_url, engine, tmp_path
):
    forget_statistics(engine, backend)
    assert statistics(engine, backend) is None
    path = tmp_path / "Master.csv"
    path.write_text("".join(line(call(n), COLUMNS) for n in range(300)))
    args = [str(path), "--db", db_url, "--quiet", "--keep-indexes", "--batch-size", "100"]

    result = CliRunner().invoke(import_cmd, args)

    assert result.exit_code == 0, result.output
    known = statistics(engine, backend)
    assert known is not None
    if backend == "mysql":
        assert int(known) >= 200  # analyzed after the second batch of 100
