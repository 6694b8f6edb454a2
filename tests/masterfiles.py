"""Master.csv lines written the way Asterisk's cdr_csv writes them, for import/follow tests.

cdr/cdr_csv.c: every string quoted with ``""`` inside, integers bare, an unset time
(``answer`` of an unanswered call) an empty bare field, columns in the order of
``build_csv_record``; amaflags as text (``DOCUMENTATION``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

BASE = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
INTS = {"duration", "billsec", "sequence"}
TIMES = {"start", "answer", "end"}


def layout_columns(
    loguniqueid: bool = False, loguserfield: bool = False, newcdrcolumns: bool = False
) -> tuple[str, ...]:
    columns = BASE
    if loguniqueid:
        columns += ("uniqueid",)
    if loguserfield:
        columns += ("userfield",)
    if newcdrcolumns:
        columns += ("peeraccount", "linkedid", "sequence")
    return columns


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def call(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """Call number ``n``: an answered outbound call from extension 1xx, one minute apart."""
    start = datetime(2018, 7, 29, 8, 0, 0) + timedelta(minutes=n)
    ext = str(100 + n % 50)
    row: dict[str, Any] = {
        "accountcode": "acme",
        "src": ext,
        "dst": f"09{n:08d}",
        "dcontext": "from-internal",
        "clid": f'"Ext {ext}" <{ext}>',
        "channel": f"PJSIP/{ext}-{n:08x}",
        "dstchannel": f"PJSIP/viettel-trunk-{n + 1:08x}",
        "lastapp": "Dial",
        "lastdata": f"PJSIP/09{n:08d}@viettel-trunk,60",
        "start": start,
        "answer": start + timedelta(seconds=5),
        "end": start + timedelta(seconds=35),
        "duration": 35,
        "billsec": 30,
        "disposition": "ANSWERED",
        "amaflags": "DOCUMENTATION",
        "uniqueid": f"{1532826000 + n * 60}.{n}",
        "userfield": "",
        "peeraccount": "",
        "linkedid": f"{1532826000 + n * 60}.{n}",
        "sequence": n,
    }
    row.update(overrides)
    return row


def line(row: dict[str, Any], columns: tuple[str, ...]) -> str:
    """One Master.csv line (with its newline) for ``row``."""
    out = []
    for name in columns:
        value = row.get(name)
        if name in TIMES:
            out.append("" if value is None else quote(value.strftime("%Y-%m-%d %H:%M:%S")))
        elif name in INTS:
            out.append(str(value if value is not None else 0))
        else:
            out.append(quote("" if value is None else str(value)))
    return ",".join(out) + "\n"


def master_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    return "".join(line(row, columns) for row in rows)
