"""`voip24h db upgrade` gives rows stored before migration 0009 their conversation
(cdr.callid) in resumable batches, then rebuilds the records (ingest/rebuild.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from tests.builders import cdr_row, chan
from tests.support import downgrade
from voip24h.cli.main import cli
from voip24h.db import migrate
from voip24h.db.queries import meta as meta_queries
from voip24h.db.schema import call_records
from voip24h.ingest import rebuild
from voip24h.ingest.loader import INDEX_KEY


def _rows() -> list[dict[str, Any]]:
    """A queue call of two legs tied by linkedid, a call known only by its uniqueid, and
    a stock-file call (no uniqueid): a ring of 201 then, 20 s later, of 202."""
    trunk = {"channel": chan("viettel-trunk"), "src": "0909000111", "lastapp": "Queue"}
    return [
        cdr_row(uniqueid="1700000000.1", linkedid="1700000000.1", dst="200",
                dstchannel=chan("200"), disposition="NO ANSWER", billsec=0, **trunk),
        cdr_row(uniqueid="1700000001.2", linkedid="1700000000.1", dst="201",
                dstchannel=chan("201"), **trunk),
        cdr_row(uniqueid="1700000100.5", linkedid="", calldate=datetime(2023, 11, 15, 5, 0)),
        cdr_row(uniqueid="", linkedid="", channel="PJSIP/trunk-0000003e",
                dstchannel=chan("201"), src="0909000222", dst="600", lastapp="Queue",
                calldate=datetime(2023, 11, 15, 6, 0, 0), duration=15, billsec=0,
                disposition="NO ANSWER"),
        cdr_row(uniqueid="", linkedid="", channel="PJSIP/trunk-0000003e",
                dstchannel=chan("202"), src="0909000222", dst="600", lastapp="Queue",
                calldate=datetime(2023, 11, 15, 6, 0, 17), duration=30, billsec=20),
    ]  # fmt: skip


def _records(engine: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(map(tuple, conn.execute(select(call_records))))


def _as_before_0009(engine: Any) -> None:
    """The database as the previous version left it: no cdr.callid, records under each
    row's uniqueid, built with mapping 2."""
    downgrade(engine, "0008")
    with engine.begin() as conn:
        built = meta_queries.get(conn, INDEX_KEY)
        meta_queries.put(conn, INDEX_KEY, built.replace("mapping=3", "mapping=2"))
        conn.execute(update(call_records).values(callid=call_records.c.callid + "-v2"))


def test_db_upgrade_fills_callids_and_rebuilds_the_records(db_url, engine, load):
    load(*_rows())
    expected = _records(engine)
    callids = {record[0] for record in expected}
    # The stock call: first row at 06:00 in Asia/Ho_Chi_Minh, channel suffix 0x3e.
    assert callids == {"1700000000.1", "1700000100.5", "1700002800.62"}
    _as_before_0009(engine)

    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", db_url, "--quiet"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "schema upgraded from 0008 to revision 0010",
        "conversations: 5 rows given their callid",
        f"reindexed: {len(expected)} call records (built with older rules or settings)",
    ]
    assert _records(engine) == expected
    again = CliRunner().invoke(cli, ["db", "upgrade", "--db", db_url, "--quiet"])
    assert again.output == "schema is current (revision 0010)\n"


class Killed(Exception):
    pass


def test_a_killed_backfill_goes_on_where_it_stopped(db_url, engine, load, settings):
    load(*_rows())
    expected = _records(engine)
    _as_before_0009(engine)
    migrate.upgrade(engine)  # the schema step alone: every callid empty

    def kill_after_first_batch(done: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        rebuild.fill_callids(engine, settings.zone, kill_after_first_batch, batch_size=2)
    assert rebuild.pending(engine) == 3  # the first batch was committed

    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", db_url, "--quiet"])

    assert result.exit_code == 0, result.output
    assert "conversations: 3 rows given their callid" in result.output
    assert rebuild.pending(engine) == 0
    assert _records(engine) == expected
