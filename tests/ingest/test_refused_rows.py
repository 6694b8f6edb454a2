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
from sqlalchemy import func, select

from tests.masterfiles import call, layout_columns, line
from tests.support import refusing_dst
from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.files import FileImporter, plan_files
from voip24h.ingest.follow import Follower, run_follow
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import RejectsWriter, read_rejects

COLUMNS = layout_columns(True, True, True)
REFUSED = "666"


@pytest.fixture
def refusing(engine: Any) -> Iterator[None]:
    """The database refuses any cdr row whose dst is 666 (the validator lets it pass)."""
    with refusing_dst(engine, REFUSED):
        yield


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


@pytest.mark.usefixtures("refusing")
def test_following_rejects_a_refused_row_once_and_goes_on(engine, settings, tmp_path):
    """Was: the whole batch refused, taken for an outage and retried for ever."""
    path, good_ids = master_file(tmp_path, 30, (10,))
    loader = Loader(engine, settings)
    loader.check_ready()
    rejects = RejectsWriter(tmp_path / "rejects.csv")
    with rejects:
        follower = run_follow(
            loader,
            str(path),
            COLUMNS,
            usegmtime=False,
            delimiter=",",
            rejects=rejects,
            poll_interval=0.05,
            max_seconds=1.0,
        )

    assert contents(engine) == (good_ids, 30)
    assert (follower.rejected, follower.stats.inserted) == (1, 30)
    [reject] = read_rejects(tmp_path / "rejects.csv")
    assert int(reject["line"]) == 11
    assert reject["reason"].startswith("refused by the database: ")
    # The checkpoint is past the refused line: a restart reads nothing again.
    again = Follower(loader, str(path), COLUMNS)
    try:
        assert again.poll() == 0
    finally:
        again.close()


def test_following_waits_out_an_outage_and_loses_nothing(engine, settings, tmp_path):
    from sqlalchemy.exc import OperationalError

    path, good_ids = master_file(tmp_path, 20, ())
    loader = Loader(engine, settings)
    loader.check_ready()
    real = loader.load_or_split
    failures = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("INSERT", {}, ConnectionResetError("server closed"))
        return real(*args, **kwargs)

    loader.load_or_split = flaky  # type: ignore[method-assign]
    follower = run_follow(
        loader,
        str(path),
        COLUMNS,
        usegmtime=False,
        delimiter=",",
        rejects=RejectsWriter(None),
        poll_interval=0.05,
        max_seconds=2.0,
    )

    assert len(failures) == 2
    assert contents(engine) == (good_ids, 20)
    assert follower.rejected == 0


@pytest.mark.parametrize("pipeline", [False, True], ids=["in-process", "workers"])
@pytest.mark.usefixtures("refusing")
def test_refused_and_invalid_lines_are_listed_in_line_order(engine, settings, tmp_path, pipeline):
    lines = [line(call(n), COLUMNS) for n in range(20)]
    lines[3] = line(call(3, dst=REFUSED), COLUMNS)  # refused by the database
    lines[7] = line(call(7, clid="nul\x00"), COLUMNS)  # refused by the row checks
    lines[12] = line(call(12, dst=REFUSED), COLUMNS)
    path = tmp_path / "Master.csv"
    path.write_text("".join(lines))
    loader = Loader(engine, settings)
    loader.check_ready()
    rejects = RejectsWriter(tmp_path / "rejects.csv")
    importer = FileImporter(
        loader, settings.zone, rejects=rejects, batch_size=20, pipeline=pipeline, workers=2
    )
    with rejects:
        summary = importer.run(plan_files([str(path)], None, None))

    assert (summary.imported, summary.rejected) == (17, 3)
    listed = read_rejects(tmp_path / "rejects.csv")
    assert [int(r["line"]) for r in listed] == [4, 8, 13]
    assert listed[1]["reason"].startswith("control character: clid")
