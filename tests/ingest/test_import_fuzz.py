"""Fuzzed values through the whole import into every backend: each line is loaded as
written or rejected with a reason, never an exception, and the good lines are kept.

Lines carry NUL and other control bytes, integers of any size, strings from empty to
far beyond any column, and any Unicode (astral planes, combining marks, RTL, BOM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.databases import clean
from tests.masterfiles import call, layout_columns, line
from voip24h.db.schema import cdr
from voip24h.ingest.files import FileImporter, plan_files
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import RejectsWriter, read_rejects

COLUMNS = layout_columns(True, True, True)
REASONS = {"control character", "out of range", "too long", "refused by the database"}
TEXT_FIELDS = ("clid", "dst", "lastdata", "userfield")
INT_FIELDS = ("duration", "billsec")

odd = st.sampled_from(["\x00", "\x07", "\x1b", "\ufeff", "\u202e", "e\u0301", "😀", "\U0010fffd"])
texts = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60),
    st.lists(st.one_of(odd, st.text(max_size=5)), max_size=8).map("".join),
    st.integers(70, 300).map(lambda n: "y" * n),  # around the columns' sizes
    st.just("z" * 300_000),  # far beyond any column
)
ints = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**80), 2**80),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, 10**19, 10**20 - 1]),
)
values = st.fixed_dictionaries(
    {**{name: texts for name in TEXT_FIELDS}, **{name: ints for name in INT_FIELDS}}
)


@hsettings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fuzzed=st.lists(values, min_size=1, max_size=6))
def test_every_fuzzed_line_is_loaded_as_written_or_rejected_with_a_reason(
    engine, settings, tmp_path: Path, fuzzed: list[dict[str, Any]]
):
    clean(engine)
    rows = [call(n, **v) for n, v in enumerate(fuzzed)]
    good = call(99)  # a plain line among them
    rows.insert(len(rows) // 2, good)
    path = tmp_path / "Master.csv"
    path.write_bytes("".join(line(row, COLUMNS) for row in rows).encode())
    rejects_path = tmp_path / "rejects.csv"
    rejects_path.unlink(missing_ok=True)
    loader = Loader(engine, settings)
    loader.check_ready()
    with RejectsWriter(rejects_path) as rejects:
        summary = FileImporter(loader, settings.zone, rejects=rejects, batch_size=3).run(
            plan_files([str(path)], None, None)
        )

    assert summary.error is None
    names = ("uniqueid", *TEXT_FIELDS, *INT_FIELDS)
    with engine.connect() as conn:
        stored = {r[0]: r[1:] for r in conn.execute(select(*(cdr.c[n] for n in names)))}
    listed = read_rejects(rejects_path) if rejects_path.exists() else []
    assert all(r["reason"].split(":")[0] in REASONS for r in listed), listed
    assert summary.imported + summary.rejected == len(rows)
    assert good["uniqueid"] in stored
    for row in rows:
        if row["uniqueid"] in stored:
            assert stored[row["uniqueid"]] == tuple(row[n] for n in names[1:])
        else:
            assert sum(f'"{row["uniqueid"]}"' in r["text"] for r in listed) == 1
    assert len(stored) + len(listed) == len(rows)
