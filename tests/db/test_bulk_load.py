"""Initial loads: read indexes built at the end (db/indexes.py), bulk engine settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from tests.masterfiles import call, layout_columns, master_csv
from voip24h.cli.main import cli
from voip24h.db import indexes
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.files import FileImporter, plan_files
from voip24h.ingest.loader import Loader

ALL = {str(ix.name) for table in (cdr, call_records) for ix in table.indexes}


def index_names(engine: Any) -> set[str]:
    found = inspect(engine)
    return {str(ix["name"]) for table in ("cdr", "call_records") for ix in found.get_indexes(table)}


def import_file(engine: Any, settings: Any, path: Path, **options: Any) -> list[str]:
    """Import ``path``; return what the progress callback said was being done."""
    notes: list[str] = []
    loader = Loader(engine, settings)
    loader.check_ready()

    def progress(done: int, rows: int, doing: str | None = None) -> None:
        if doing:
            notes.append(doing)

    importer = FileImporter(loader, settings.zone, progress=progress, **options)
    summary = importer.run(plan_files([str(path)], None, None))
    assert summary.rejected == 0 and summary.error is None
    return notes


def master(tmp_path: Path, name: str, first: int, count: int) -> Path:
    path = tmp_path / name
    path.write_text(master_csv([call(n) for n in range(first, first + count)], layout_columns()))
    return path


def test_an_initial_load_defers_the_read_indexes_and_builds_them_at_the_end(
    engine, settings, tmp_path
):
    notes = import_file(engine, settings, master(tmp_path, "a.csv", 0, 50))

    deferred = [str(ix.name) for ix in indexes.deferrable()]
    assert notes == [f"building index {name}" for name in deferred]
    assert "ix_records_user_ts" in deferred and "ix_cdr_callid" not in deferred
    assert index_names(engine) >= ALL
    assert not indexes.is_deferred(engine)


def test_a_load_into_a_table_with_rows_keeps_the_indexes(engine, settings, tmp_path):
    import_file(engine, settings, master(tmp_path, "a.csv", 0, 20))
    notes = import_file(engine, settings, master(tmp_path, "b.csv", 20, 20))
    assert notes == []
    assert index_names(engine) >= ALL


def test_keep_indexes_opts_out_of_deferring(engine, settings, tmp_path):
    notes = import_file(engine, settings, master(tmp_path, "a.csv", 0, 20), defer_indexes=False)
    assert notes == []
    assert index_names(engine) >= ALL


def test_an_unfinished_deferral_is_completed_by_db_upgrade(engine, settings, tmp_path):
    indexes.defer(engine)  # what an import killed mid-way leaves behind
    assert indexes.is_deferred(engine)
    assert not (index_names(engine) >= ALL)

    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", settings.database_url])

    assert result.exit_code == 0, result.output
    assert "building index ix_records_user_ts" in result.output
    assert index_names(engine) >= ALL
    assert not indexes.is_deferred(engine)


def test_a_keep_indexes_import_first_completes_an_unfinished_deferral(engine, settings, tmp_path):
    import_file(engine, settings, master(tmp_path, "a.csv", 0, 20))
    indexes.defer(engine)
    notes = import_file(engine, settings, master(tmp_path, "b.csv", 20, 20), defer_indexes=False)
    assert notes == []
    assert index_names(engine) >= ALL
    assert not indexes.is_deferred(engine)


def test_the_head_constant_is_the_newest_migration(engine):
    from voip24h.db import migrate

    assert migrate.head_revision(engine) == migrate.HEAD
    assert migrate.current_revision(engine) == migrate.HEAD
    assert migrate.is_current(engine)


def test_the_import_engine_checkpoints_sqlite_wal_less_often(tmp_path):
    from voip24h.db.engine import BULK_WAL_AUTOCHECKPOINT, make_engine

    url = f"sqlite:///{tmp_path / 'x.db'}"
    for bulk, expected in ((True, BULK_WAL_AUTOCHECKPOINT), (False, 1000)):
        engine = make_engine(url, bulk=bulk)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == expected
        engine.dispose()


def test_serve_builds_indexes_an_unfinished_load_left_out_before_serving(engine, settings, capsys):
    from voip24h.cli.main import _check_schema

    indexes.defer(engine)
    _check_schema(settings)

    assert "building index ix_records_ts" in capsys.readouterr().err
    assert index_names(engine) >= ALL
    assert not indexes.is_deferred(engine)


@pytest.mark.parametrize(
    "columns", [layout_columns(), layout_columns(True, True, True)], ids=["digest", "sequence"]
)
def test_an_initial_load_skips_duplicates_without_the_unique_index(
    engine, settings, tmp_path, columns
):
    """The unique row-key index is built at the end; overlapping files, and a file given
    twice, still import each row once (stored keys are found through the uniqueid)."""

    def write(name: str, first: int, count: int) -> str:
        path = tmp_path / name
        path.write_text(master_csv([call(n) for n in range(first, first + count)], columns))
        return str(path)

    a, b = write("a.csv", 0, 30), write("b.csv", 20, 30)
    loader = Loader(engine, settings)
    loader.check_ready()
    seen: list[bool] = []
    notes: list[str] = []

    def progress(done: int, rows: int, doing: str | None = None) -> None:
        seen.append(loader.keys_indexed)
        if doing:
            notes.append(doing)

    importer = FileImporter(loader, settings.zone, progress=progress, batch_size=7)
    summary = importer.run(plan_files([a, b, a], None, None))

    assert (summary.imported, summary.duplicates, summary.rejected) == (50, 40, 0)
    assert seen[0] is False and notes[0] == "building index ux_cdr_row_key"
    assert loader.keys_indexed is None and not indexes.is_deferred(engine)
    with engine.connect() as conn:
        keys = conn.execute(select(cdr.c.row_key)).scalars().all()
    assert len(keys) == len(set(keys)) == 50
    again = FileImporter(loader, settings.zone).run(plan_files([b], None, None))
    assert (again.imported, again.duplicates) == (0, 30)


def test_building_the_unique_index_drops_a_row_a_second_writer_stored_twice(
    engine, settings, tmp_path
):
    import_file(engine, settings, master(tmp_path, "a.csv", 0, 5))
    indexes.defer(engine)  # another writer, unaware, stores a row again meanwhile
    with engine.begin() as conn:
        first = conn.execute(select(cdr).order_by(cdr.c.id).limit(1)).mappings().one()
        conn.execute(cdr.insert(), {k: v for k, v in first.items() if k != "id"})
        assert conn.scalar(select(func.count()).select_from(cdr)) == 6

    assert indexes.restore(engine)[0] == "ux_cdr_row_key"

    with engine.connect() as conn:
        ids = conn.execute(select(cdr.c.id).where(cdr.c.row_key == first["row_key"])).all()
        assert ids == [(first["id"],)]
        assert conn.scalar(select(func.count()).select_from(cdr)) == 5
    assert index_names(engine) >= ALL


def test_a_writer_keeps_skipping_duplicates_while_another_defers_the_unique_index(engine, settings):
    """follow and sync do not defer, but may write while a forced deferral is on."""
    from voip24h.domain import cdr as cdr_module

    rows = [cdr_module.normalize(call(n, amaflags=3), settings.zone) for n in range(15)]
    loader = Loader(engine, settings)
    loader.check_ready()
    assert loader.load(rows[:10]).inserted == 10
    indexes.defer(engine)

    stats = loader.load(rows[5:])

    assert (stats.inserted, stats.duplicates) == (5, 5)
    indexes.restore(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(cdr)) == 15


def test_user_reads_answer_the_same_while_an_initial_load_has_the_indexes_dropped(
    engine, settings, tmp_path, add_partner, post
):
    # On MariaDB/MySQL a one-user read names its index (FORCE INDEX): with that index
    # gone the server runs the statement without the hint rather than fail.
    import_file(engine, settings, master(tmp_path, "a.csv", 0, 120))
    tenant, everyone = add_partner("tenant", ("acme",)), add_partner("all")
    asks = [
        (secret, kind, data)
        for secret in (tenant, everyone)
        for kind, data in (
            ("getUser", {"user": "107"}),
            ("getUserDate", {"user": "107", "fromDate": "29/07/2018", "toDate": "29/07/2018"}),
        )
    ]
    before = [post(kind, secret, data).json() for secret, kind, data in asks]
    assert all(answer["respCode"] == 0 and len(answer["data"]) == 3 for answer in before)

    indexes.defer(engine)
    assert "ix_records_account_user_ts" not in index_names(engine)

    assert [post(kind, secret, data).json() for secret, kind, data in asks] == before
