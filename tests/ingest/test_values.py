"""Values no backend would take are rejected with their line and column; the rest loads.

Each case is a fault seen in the field: a NUL byte (PostgreSQL refuses the whole batch),
an integer wider than the 32-bit columns (MariaDB error 1264, SQLite's OverflowError),
a 10 MB field, and stray blank lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.masterfiles import call, layout_columns, line
from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.csvstream import RecordSplitter
from voip24h.ingest.follow import Follower
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import read_rejects
from voip24h.ingest.rows import RowParser
from voip24h.ingest.sync import normalize_source_row

COLUMNS = layout_columns(True, True, True)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def import_file(db_url: str, path: Path, rejects: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        import_cmd, [str(path), "--db", db_url, "--quiet", "--json", "--rejects", str(rejects)]
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.output)


def stored(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(cdr.c.uniqueid)))


def test_bad_values_are_rejected_naming_the_column_and_every_good_line_is_kept(
    db_url, engine, tmp_path
):
    good = [call(n) for n in range(200)]
    text = [line(row, COLUMNS) for row in good]
    bad = {
        50: line(call(900, clid='"Ext\x00" <100>'), COLUMNS),
        100: line(call(901), COLUMNS).replace(",35,30,", ",99999999999,30,"),
        150: line(call(902), COLUMNS).replace(",35,30,", ",35,12345678901234567890,"),
        175: line(call(903, lastdata="x" * 10_000_000), COLUMNS),
        190: line(call(904, userfield="bell\x07"), COLUMNS),
    }
    for at in sorted(bad):  # ascending: each lands at its own index
        text.insert(at, bad[at])
    path = tmp_path / "Master.csv"
    path.write_text("".join(text))
    rejects = tmp_path / "rejects.csv"

    code, summary = import_file(db_url, path, rejects)

    assert code == 1
    assert (summary["imported"], summary["rejected"]) == (200, 5)
    assert stored(engine) == sorted(row["uniqueid"] for row in good)
    listed = read_rejects(rejects)
    assert [int(r["line"]) for r in listed] == [at + 1 for at in sorted(bad)]
    assert [r["reason"] for r in listed] == [
        "control character: clid holds byte 0x00 at character 5",
        "out of range: duration 99999999999 does not fit the column "
        "(-2147483648 to 2147483647)",
        "out of range: billsec 12345678901234567890 does not fit the column "
        "(-2147483648 to 2147483647)",
        "too long: lastdata has 10000000 characters, the column holds 255",
        "control character: userfield holds byte 0x07 at character 5",
    ]


def test_blank_lines_are_skipped_without_a_reject(db_url, engine, tmp_path):
    path = tmp_path / "Master.csv"
    path.write_text("\n" + line(call(0), COLUMNS) + "\n\r\n" + line(call(1), COLUMNS) + "\n")
    rejects = tmp_path / "rejects.csv"

    code, summary = import_file(db_url, path, rejects)

    assert code == 0
    assert (summary["imported"], summary["rejected"]) == (2, 0)
    assert not rejects.exists()


def test_following_a_file_with_bad_values_rejects_them_and_goes_on(
    engine, settings, tmp_path
):
    path = tmp_path / "Master.csv"
    path.write_text(
        line(call(0), COLUMNS)
        + line(call(1), COLUMNS).replace(",35,30,", ",99999999999999999999,30,")
        + line(call(2, dst="09\x0012"), COLUMNS)
        + line(call(3), COLUMNS)
    )
    loader = Loader(engine, settings)
    loader.check_ready()
    tail = Follower(loader, str(path), COLUMNS)
    try:
        tail.poll()
    finally:
        tail.close()
    assert stored(engine) == sorted(call(n)["uniqueid"] for n in (0, 3))
    assert tail.rejected == 2


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("clid", "a\x00b", "control character: clid holds byte 0x00 at character 2"),
        ("duration", 2**31, "out of range: duration 2147483648 does not fit the column"),
        ("sequence", -(2**40), "out of range: sequence -1099511627776 does not fit"),
    ],
)
def test_a_synced_row_with_a_bad_value_is_refused_naming_the_column(column, value, reason):
    raw = {**call(0), "calldate": call(0)["start"], "amaflags": 3, column: value}
    del raw["start"]
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        normalize_source_row(raw, ZONE, {})


texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300
)
ints = st.one_of(st.integers(-(2**70), 2**70), st.integers(-(2**31), 2**31 - 1))


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(clid=texts, lastdata=texts, duration=ints, billsec=ints)
def test_any_value_either_loads_as_written_or_is_rejected_never_both_lost(
    loader_for_fuzz, clid, lastdata, duration, billsec
):
    """Fuzzed values into the real backend: a line loads intact or is a named reject."""
    loader, engine = loader_for_fuzz
    row = call(7, clid=clid, lastdata=lastdata, duration=duration, billsec=billsec)
    with engine.begin() as conn:
        conn.execute(delete(call_records))
        conn.execute(delete(cdr))
    parser_row, reason = _parse(line(row, COLUMNS))
    if reason is not None:
        assert reason.split(":")[0] in {"control character", "out of range", "too long"}
        return
    loader.load_batch([parser_row])
    with engine.connect() as conn:
        got = conn.execute(select(cdr.c.clid, cdr.c.lastdata, cdr.c.duration, cdr.c.billsec))
        assert [tuple(r) for r in got] == [(clid, lastdata, duration, billsec)]


def _parse(text: str) -> tuple[Any, str | None]:
    records = list(RecordSplitter(len(COLUMNS)).feed(text.encode()))
    assert len(records) == 1
    parsed = RowParser(COLUMNS, ZONE).parse(records[0])
    return parsed.row, parsed.error


@pytest.fixture
def loader_for_fuzz(engine, settings):
    loader = Loader(engine, settings)
    loader.check_ready()
    return loader, engine
