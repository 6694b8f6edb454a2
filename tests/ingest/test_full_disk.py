"""A database that runs out of space stops import and follow with a clear message
(exit 4) and loses nothing: run again once there is space, and the tables are those of
a clean import. The full disk is SQLite's ``PRAGMA max_page_count``, set on every
connection the commands open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event

from tests.masterfiles import call, layout_columns, line
from tests.support import contents, count
from voip24h.cli.importing import EXIT_FULL, import_cmd
from voip24h.db import faults, indexes, migrate
from voip24h.db.engine import make_engine
from voip24h.ingest.follow import run_follow
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import RejectsWriter

COLUMNS = layout_columns(True, True, True)
ROWS = 3000


@pytest.fixture
def master(tmp_path: Path) -> Path:
    path = tmp_path / "Master.csv"
    path.write_text("".join(line(call(n), COLUMNS) for n in range(ROWS)))
    return path


@pytest.fixture
def full_at() -> Iterator[Any]:
    """full_at(path, pages): connections to the SQLite file ``path`` get a page limit;
    the limit is lifted at the end of the test (or by calling the result)."""
    limits: dict[str, int] = {}

    def _limit(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            name = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
            if name in limits:
                dbapi_connection.execute(f"PRAGMA max_page_count={limits[name]}").close()

    event.listen(Engine, "connect", _limit)

    def _set(path: Path, extra_pages: int) -> Any:
        engine = make_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        engine.dispose()
        limits[str(path)] = pages + extra_pages
        return limits.clear

    yield _set
    event.remove(Engine, "connect", _limit)


def database(tmp_path: Path, name: str) -> tuple[str, Path]:
    path = tmp_path / name
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url, path


def imported(url: str, master: Path, tmp_path: Path, *extra: str) -> Any:
    args = [str(master), "--db", url, "--quiet", "--rejects", str(tmp_path / "r.csv"), *extra]
    return CliRunner().invoke(import_cmd, args)


@pytest.mark.parametrize("defer", ["--defer-indexes", "--keep-indexes"])
def test_import_stops_on_a_full_disk_with_exit_4_and_a_rerun_finishes_it(
    tmp_path, master, full_at, defer
):
    clean_url, _ = database(tmp_path, "clean.db")
    assert imported(clean_url, master, tmp_path).exit_code == 0
    url, path = database(tmp_path, "small.db")
    lift = full_at(path, 120)

    stopped = imported(url, master, tmp_path, "--batch-size", "250", defer)

    assert stopped.exit_code == EXIT_FULL, stopped.output
    assert "the database is out of space (database or disk is full)" in stopped.output
    assert "run the same command again" in stopped.output
    assert "Traceback" not in stopped.output
    engine = make_engine(url)
    try:
        kept = count(engine)
        assert 0 < kept < ROWS  # the batches committed before the disk filled
        _rows, records = contents(engine)
        assert len(records) == kept  # every kept row has its call's record
        lift()
        again = imported(url, master, tmp_path)
        assert again.exit_code == 0, again.output
        clean = make_engine(clean_url)
        try:
            assert contents(engine) == contents(clean)
        finally:
            clean.dispose()
        assert not indexes.is_deferred(engine)
    finally:
        engine.dispose()


def test_follow_stops_on_a_full_disk_and_resumes_at_its_checkpoint(
    tmp_path, master, full_at, settings_for
):
    url, path = database(tmp_path, "small.db")
    clean_url, _ = database(tmp_path, "clean.db")
    assert imported(clean_url, master, tmp_path).exit_code == 0
    lift = full_at(path, 120)
    engine = make_engine(url)
    try:
        loader = Loader(engine, settings_for(url))
        loader.check_ready()

        def follow() -> Any:
            return run_follow(
                loader,
                str(master),
                COLUMNS,
                usegmtime=False,
                delimiter=",",
                rejects=RejectsWriter(None),
                poll_interval=0.05,
                max_seconds=1.5,
                batch_size=250,
            )

        with pytest.raises(faults.DatabaseFull, match="database or disk is full"):
            follow()
        kept = count(engine)
        assert 0 < kept < ROWS
        lift()
        engine.dispose()
        follow()
        clean = make_engine(clean_url)
        try:
            assert contents(engine) == contents(clean)
        finally:
            clean.dispose()
    finally:
        engine.dispose()


def test_the_follow_command_says_the_disk_is_full_and_exits_4(tmp_path, master, full_at):
    url, path = database(tmp_path, "small.db")
    full_at(path, 60)
    args = [str(master), "--db", url, "--quiet", "--follow", "--rejects", str(tmp_path / "r")]
    result = CliRunner().invoke(import_cmd, args)
    assert result.exit_code == EXIT_FULL, result.output
    assert "the database is out of space" in result.output


@pytest.fixture
def settings_for() -> Any:
    from voip24h.config import load_settings

    return lambda url: load_settings({"database_url": url}, environ={})
