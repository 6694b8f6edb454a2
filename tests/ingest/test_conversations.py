"""callId names the conversation (docs/mapping.md, call-records.md section 3, v2).

Built from what a real Asterisk 20 wrote (tests/fixtures/asterisk-20, see its
scenarios.md): ``cdr-custom.csv`` is its cdr_custom file with linkedid,
peeraccount and sequence; ``Master.csv`` its cdr_csv file with uniqueid, from
which a stock ``loguniqueid=no`` file is made by dropping that column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from voip24h.cli.importing import import_cmd
from voip24h.db.schema import call_records, cdr

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk-20"
CUSTOM_COLUMNS = (
    "clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,"
    "billsec,disposition,amaflags,accountcode,uniqueid,userfield,linkedid,peeraccount,sequence"
)


def _import(db_url: str, path: Path, *flags: str) -> str:
    result = CliRunner().invoke(import_cmd, [str(path), "--usegmtime", "--db", db_url, *flags])
    assert result.exit_code == 0, result.output
    return result.output


def _calls(engine: Any) -> dict[str, dict[str, tuple[str, str, str, str]]]:
    """callId -> user -> (phoneNumber, callType, callStatus, callDate)."""
    calls: dict[str, dict[str, tuple[str, str, str, str]]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(call_records)).mappings():
            calls.setdefault(r["callid"], {})[r["user_ext"]] = (
                r["phone_number"], r["call_type"], r["call_status"], r["call_date"]
            )  # fmt: skip
    return calls


def _stock(tmp_path: Path, name: str = "stock.csv", reverse: bool = False) -> Path:
    """The fixture's Master.csv as a stock cdr_csv writes it (loguniqueid=no)."""
    import csv

    rows = list(csv.reader((FIXTURES / "Master.csv").open(newline="")))
    if reverse:
        rows.reverse()
    path = tmp_path / name
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        for row in rows:
            # uniqueid (17th) and userfield (18th) are what loguniqueid/loguserfield add.
            writer.writerow(row[:16])
    return path


def test_a_blind_transfer_by_the_caller_is_one_conversation(db_url, engine):
    # Scenario 63: 101 -> 102 answered, 101 REFERs 102 to 103. Asterisk writes the
    # transferred leg with 102's channel and uniqueid (.146), and the first channel's
    # linkedid (.145) on both rows.
    _import(db_url, FIXTURES / "cdr-custom.csv", "--columns", CUSTOM_COLUMNS)
    calls = _calls(engine)
    assert "1796592795.146" not in calls
    conversation = calls["1796592795.145"]
    assert {user: r[:3] for user, r in conversation.items()} == {
        "101": ("102", "INTERNAL", "ANSWERED"),
        "102": ("103", "INTERNAL", "ANSWERED"),  # its longer row: the leg it was sent on
        "103": ("102", "INTERNAL", "ANSWERED"),
    }


def test_every_record_of_a_linkedid_source_carries_its_linkedid_as_callid(db_url, engine):
    _import(db_url, FIXTURES / "cdr-custom.csv", "--columns", CUSTOM_COLUMNS)
    with engine.connect() as conn:
        pairs = set(conn.execute(select(call_records.c.callid, call_records.c.linkedid)))
        linked = set(conn.execute(select(cdr.c.linkedid)).scalars())
    assert pairs and all(callid == linkedid for callid, linkedid in pairs)
    assert {callid for callid, _ in pairs} <= linked


def test_get_call_data_takes_the_uniqueid_of_any_row_of_the_conversation(db_url, add_partner, post):
    _import(db_url, FIXTURES / "cdr-custom.csv", "--columns", CUSTOM_COLUMNS)
    secret = add_partner("crm")
    by_call = post("getCallData", secret, {"callId": "1796592795.145"}).json()
    by_leg = post("getCallData", secret, {"callId": "1796592795.146"}).json()
    assert by_call["respCode"] == 0 and len(by_call["data"]) == 3
    assert by_leg == by_call


def test_a_stock_master_csv_groups_each_calls_rows_by_its_caller_channel(db_url, engine, tmp_path):
    # The same calls, logged without uniqueid: every conversation keeps its records.
    _import(db_url, FIXTURES / "Master.csv")
    with_uniqueid = _calls(engine)
    with engine.begin() as conn:
        conn.execute(call_records.delete())
        conn.execute(cdr.delete())
    _import(db_url, _stock(tmp_path))
    stock = _calls(engine)
    assert sorted(sorted(c.items()) for c in stock.values()) == sorted(
        sorted(c.items()) for c in with_uniqueid.values()
    )
    # The derived callId (first start's epoch . channel suffix) is Asterisk's own
    # uniqueid where the channel was created as its first row started (the counter
    # is shared): scenario 10, queue 600 rung twice, five rows over 30 s, one call.
    assert stock["1796592454.62"] == with_uniqueid["1796592454.62"]
    assert set(stock["1796592454.62"]) == {"101", "102"}
    # A transferred leg's channel was created before its row: its epoch is the row's.
    assert "1796592800.146" in stock and "1796592795.146" in with_uniqueid


def test_derived_callids_do_not_depend_on_order_or_batches(db_url, engine, tmp_path):
    _import(db_url, _stock(tmp_path))
    in_order = _calls(engine)
    with engine.begin() as conn:
        conn.execute(call_records.delete())
        conn.execute(cdr.delete())
    # Newest line first, two lines per batch: every conversation straddles batches.
    _import(db_url, _stock(tmp_path, "reversed.csv", reverse=True), "--batch-size", "2")
    assert _calls(engine) == in_order


def test_importing_the_second_half_of_a_conversation_later_joins_it(db_url, engine, tmp_path):
    stock = _stock(tmp_path)
    lines = stock.read_text().splitlines(keepends=True)
    queue = [i for i, line in enumerate(lines) if "SIP/trunk-0000003e" in line]
    assert len(queue) == 5  # scenario 10: two rounds of two agents, then the hangup row
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("".join(lines[: queue[2]]))
    second.write_text("".join(lines[queue[2] :]))
    _import(db_url, second)  # the later rows first, in another import
    _import(db_url, first)
    calls = _calls(engine)
    assert set(calls["1796592454.62"]) == {"101", "102"}
    with engine.connect() as conn:
        ids = set(conn.execute(select(cdr.c.callid).where(cdr.c.channel == "SIP/trunk-0000003e")))
    assert ids == {("1796592454.62",)}


def test_a_21_column_master_csv_in_local_time_gives_the_same_conversations(
    db_url, engine, tmp_path
):
    # The cdr_custom capture rewritten as cdr_csv writes it with loguniqueid,
    # loguserfield and newcdrcolumns (21 columns), times in the PBX's local time.
    import csv
    from datetime import datetime, timedelta

    _import(db_url, FIXTURES / "cdr-custom.csv", "--columns", CUSTOM_COLUMNS)
    expected = _calls(engine)
    with engine.begin() as conn:
        conn.execute(call_records.delete())
        conn.execute(cdr.delete())
    names = CUSTOM_COLUMNS.split(",")
    order = [
        "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
        "lastdata", "start", "answer", "end", "duration", "billsec", "disposition",
        "amaflags", "uniqueid", "userfield", "peeraccount", "linkedid", "sequence",
    ]  # fmt: skip

    def local(value: str) -> str:  # GMT -> Asia/Ho_Chi_Minh (UTC+7, no DST)
        moment = datetime.fromisoformat(value) + timedelta(hours=7)
        return moment.strftime("%Y-%m-%d %H:%M:%S") if value else ""

    path = tmp_path / "Master.csv"
    with (FIXTURES / "cdr-custom.csv").open(newline="") as source, path.open("w") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for fields in csv.reader(source):
            row = dict(zip(names, fields, strict=True))
            for name in ("start", "answer", "end"):
                row[name] = local(row[name]) if row[name] else ""
            writer.writerow([row[name] for name in order])

    result = CliRunner().invoke(
        import_cmd,
        [str(path), "--loguniqueid", "--loguserfield", "--newcdrcolumns", "--db", db_url],
    )

    assert result.exit_code == 0, result.output
    assert _calls(engine) == expected
