"""Ingestion writes events in its own transaction: record.created for a new record,
record.updated for a changed one, none for a duplicate row, none lost when a loader dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tests.builders import calls, cdr_row, chan
from voip24h.db.queries.events import events_for_partner
from voip24h.db.schema import call_records, events
from voip24h.domain import cdr
from voip24h.domain.partners import Scope
from voip24h.ingest.loader import Loader


def all_events(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return events_for_partner(conn, Scope(), 0, 10_000)


def record_keys(engine: Any) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(call_records.c.callid, call_records.c.user_ext))
        return {(row.callid, row.user_ext) for row in rows}


def test_each_new_record_is_one_record_created_event_with_the_push_fields(load, engine):
    stats = load(*calls())
    got = all_events(engine)
    assert stats.events == len(got) == len(record_keys(engine)) > 3
    assert {e["type"] for e in got} == {"record.created"}
    assert {(e["data"]["callId"], e["data"]["user"]) for e in got} == record_keys(engine)
    assert [e["sequence"] for e in got] == sorted(e["sequence"] for e in got)
    outbound = next(e["data"] for e in got if e["data"]["callId"] == "1532857052.131132")
    assert outbound == {
        "callId": "1532857052.131132",
        "user": "137",
        "phoneNumber": "0982056720",
        "callType": "EXTERNAL",
        "callStatus": "ANSWERED",
        "callDate": "2018-07-29 16:37:32",
        "duration": 40,
        "billsec": 30,
        "direction": "OUTBOUND",
        "did": "",
        "linkedid": "1532857052.131132",
        "hasRecording": True,
    }


def test_loading_the_same_rows_again_makes_no_event(load, engine):
    rows = calls()
    load(*rows)
    before = all_events(engine)
    again = load(*rows)
    assert again.inserted == 0 and again.events == 0
    assert all_events(engine) == before


def test_a_later_row_that_changes_a_record_makes_record_updated(load, engine):
    first = cdr_row(
        uniqueid="1700000000.1",
        linkedid="1700000000.1",
        calldate=datetime(2023, 11, 14, 22, 13, 20),
        src="0971828252",
        dst="150",
        channel=chan("viettel-trunk"),
        dstchannel=chan("150"),
        disposition="NO ANSWER",
        billsec=0,
    )
    load(first)
    answered = {**first, "dstchannel": chan("150"), "disposition": "ANSWERED", "billsec": 12}
    answered["calldate"] = datetime(2023, 11, 14, 22, 13, 30)
    stats = load(answered)
    got = all_events(engine)
    assert [(e["type"], e["data"]["callStatus"], e["data"]["billsec"]) for e in got] == [
        ("record.created", "NO ANSWER", 0),
        ("record.updated", "ANSWERED", 12),
    ]
    assert stats.events == 1
    assert got[0]["id"] != got[1]["id"]
    # a row of the same call that changes nothing in the record makes no event
    unchanged = {**first, "dstchannel": chan("150"), "disposition": "BUSY", "billsec": 0}
    unchanged["calldate"] = datetime(2023, 11, 14, 22, 13, 40)
    assert load(unchanged).events == 0


def test_a_batch_rolled_back_leaves_neither_records_nor_events(engine, settings):
    loader = Loader(engine, settings)
    loader.check_ready()
    rows = [cdr.normalize(row, settings.zone) for row in calls()]
    try:
        with engine.begin() as conn:
            assert loader.load_batch_in(conn, rows).events > 0
            raise RuntimeError("the process dies before the commit")
    except RuntimeError:
        pass
    assert all_events(engine) == [] and record_keys(engine) == set()
    assert loader.load_batch(rows).events == len(all_events(engine)) > 0


def test_events_off_writes_records_but_no_events(engine, settings):
    loader = Loader(engine, settings.replace(events_enabled=False))
    loader.check_ready()
    stats = loader.load(cdr.normalize(row, settings.zone) for row in calls())
    assert stats.records > 0 and stats.events == 0 and all_events(engine) == []


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta
    from voip24h.config import load_settings
    from voip24h.db.engine import make_engine
    from voip24h.domain import cdr
    from voip24h.ingest.loader import Loader

    settings = load_settings({"database_url": sys.argv[1]}, environ={})
    loader = Loader(make_engine(settings.database_url), settings)
    loader.check_ready()
    t0 = datetime(2024, 1, 1, 8, 0, 0)
    n = 0
    while True:
        rows = []
        for _ in range(200):
            n += 1
            rows.append(cdr.normalize({
                "calldate": t0 + timedelta(seconds=n), "src": "101", "dst": "0900000000",
                "channel": f"PJSIP/101-{n:08x}", "dstchannel": f"PJSIP/trunk-{n:08x}",
                "lastapp": "Dial", "duration": 5, "billsec": 3, "disposition": "ANSWERED",
                "accountcode": "acme", "uniqueid": f"1704096000.{n}", "linkedid": f"1704096000.{n}",
            }, settings.zone))
        loader.load_batch(rows)
        print(n, flush=True)
    """
)


def test_a_loader_killed_mid_import_loses_no_event(engine, db_url, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), db_url], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None
        for _ in range(3):  # three batches committed, the fourth under way
            child.stdout.readline()
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    keys = record_keys(engine)
    got = all_events(engine)
    assert len(keys) >= 600
    assert {(e["data"]["callId"], e["data"]["user"]) for e in got} == keys
    assert len(got) == len(keys)
    with engine.connect() as conn:
        seqs = [row[0] for row in conn.execute(select(events.c.seq).order_by(events.c.seq))]
        assert conn.scalar(select(func.count()).select_from(events)) == len(seqs)
    assert seqs == list(range(1, len(seqs) + 1))


def test_following_a_master_csv_appends_events_as_lines_arrive(engine, settings, tmp_path):
    from tests.masterfiles import call, layout_columns, line
    from voip24h.ingest.follow import Follower

    columns = layout_columns(True, True, True)
    master = tmp_path / "Master.csv"
    master.write_bytes(b"".join(line(call(n), columns).encode() for n in (0, 1)))
    loader = Loader(engine, settings)
    loader.check_ready()
    tail = Follower(loader, str(master), columns)
    try:
        tail.poll()
        first = len(all_events(engine))
        with master.open("ab") as handle:
            handle.write(line(call(2), columns).encode())
        tail.poll()
        with master.open("ab") as handle:  # the same line again: a duplicate row
            handle.write(line(call(2), columns).encode())
        tail.poll()
    finally:
        tail.close()
    got = all_events(engine)
    assert first > 0 and len(got) > first
    assert {(e["data"]["callId"], e["data"]["user"]) for e in got} == record_keys(engine)
    assert len(got) == len(record_keys(engine))


def test_voip24h_import_of_a_file_appends_one_event_per_record(engine, db_url, tmp_path):
    from click.testing import CliRunner

    from tests.masterfiles import call, layout_columns, master_csv
    from voip24h.cli.main import cli

    columns = layout_columns(True, True, True)
    path = tmp_path / "Master.csv"
    path.write_text(master_csv([call(n) for n in range(50)], columns))
    for _ in range(2):  # the second import finds only duplicates
        done = CliRunner().invoke(cli, ["import", str(path), "--db", db_url, "--quiet"])
        assert done.exit_code == 0, done.output
    got = all_events(engine)
    assert {(e["data"]["callId"], e["data"]["user"]) for e in got} == record_keys(engine)
    assert len(got) == len(record_keys(engine)) >= 50
