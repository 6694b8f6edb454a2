"""A batch the database refuses for its data is split until the refused rows are found.

The row validator (ingest/rows.py) catches what every backend is known to refuse; what
it cannot know (a CHECK an operator added, a trigger, a backend's own limit) still
reaches the database. Here a constraint refuses calls to the number 666 on each
backend: those lines are rejected with their line number and the database's reason,
every other line of their batches is loaded, with its call records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from tests.masterfiles import call, layout_columns, line
from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.files import FileImporter, plan_files
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import RejectsWriter, read_rejects

COLUMNS = layout_columns(True, True, True)
REFUSED = "666"


@pytest.fixture
def refusing(engine: Any, backend: str) -> Iterator[None]:
    """The database refuses any cdr row whose dst is 666 (the validator lets it pass)."""
    if backend == "sqlite":
        add = (
            "CREATE TRIGGER t_refuse_666 BEFORE INSERT ON cdr WHEN NEW.dst = '666' "
            "BEGIN SELECT RAISE(ABORT, 'dst 666 is refused'); END"
        )
        drop = "DROP TRIGGER IF EXISTS t_refuse_666"
    else:
        add = "ALTER TABLE cdr ADD CONSTRAINT t_refuse_666 CHECK (dst <> '666')"
        drop = "ALTER TABLE cdr DROP CONSTRAINT t_refuse_666"
    with engine.begin() as conn:
        conn.execute(text(add))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(drop))


def master_file(tmp_path: Path, good: int, bad_at: tuple[int, ...]) -> tuple[Path, list[str]]:
    """A Master.csv of ``good`` good calls with refused calls inserted at ``bad_at``."""
    rows = [call(n) for n in range(good)]
    lines = [line(row, COLUMNS) for row in rows]
    for at in sorted(bad_at):
        lines.insert(at, line(call(900 + at, dst=REFUSED), COLUMNS))
    path = tmp_path / "Master.csv"
    path.write_text("".join(lines))
    return path, sorted(row["uniqueid"] for row in rows)


def contents(engine: Any) -> tuple[list[str], int]:
    with engine.connect() as conn:
        ids = sorted(conn.scalars(select(cdr.c.uniqueid)))
        records = conn.scalar(select(func.count()).select_from(call_records))
    return ids, int(records or 0)


@pytest.mark.usefixtures("refusing")
def test_import_rejects_the_rows_the_database_refuses_and_keeps_the_rest(db_url, engine, tmp_path):
    bad_at = (0, 57, 130, 299)
    path, good_ids = master_file(tmp_path, 300, bad_at)
    rejects = tmp_path / "rejects.csv"

    result = CliRunner().invoke(
        import_cmd,
        [
            str(path),
            "--db",
            db_url,
            "--quiet",
            "--json",
            "--rejects",
            str(rejects),
            "--batch-size",
            "100",
        ],
    )

    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert (summary["imported"], summary["rejected"]) == (300, 4)
    ids, records = contents(engine)
    assert ids == good_ids
    assert records == 300  # one outbound record per good call
    listed = read_rejects(rejects)
    assert [int(r["line"]) for r in listed] == [at + 1 for at in bad_at]
    assert all(r["reason"].startswith("refused by the database: ") for r in listed)
    assert all(f'"{REFUSED}"' in r["text"] for r in listed)


@pytest.mark.parametrize("pipeline", [False, True], ids=["in-process", "workers"])
@pytest.mark.usefixtures("refusing")
def test_a_refused_row_in_a_parsed_batch_is_found_with_its_line(
    engine, settings, tmp_path, pipeline
):
    path, good_ids = master_file(tmp_path, 120, (33,))
    loader = Loader(engine, settings)
    loader.check_ready()
    rejects = RejectsWriter(tmp_path / "rejects.csv")
    importer = FileImporter(
        loader, settings.zone, rejects=rejects, batch_size=50, pipeline=pipeline, workers=2
    )
    with rejects:
        summary = importer.run(plan_files([str(path)], None, None))

    assert (summary.imported, summary.rejected, summary.error) == (120, 1, None)
    assert contents(engine) == (good_ids, 120)
    [reject] = read_rejects(tmp_path / "rejects.csv")
    assert int(reject["line"]) == 34


@pytest.mark.usefixtures("refusing")
def test_running_the_import_again_loads_nothing_twice(db_url, engine, tmp_path):
    path, good_ids = master_file(tmp_path, 40, (5,))
    args = [str(path), "--db", db_url, "--quiet", "--json", "--batch-size", "10"]
    first = CliRunner().invoke(import_cmd, [*args, "--rejects", str(tmp_path / "r1.csv")])
    again = CliRunner().invoke(import_cmd, [*args, "--rejects", str(tmp_path / "r2.csv")])

    assert (first.exit_code, again.exit_code) == (1, 1)
    assert json.loads(again.output)["duplicates"] == 40
    assert contents(engine) == (good_ids, 40)
