"""Hand-built CDR rows, so each mapping case reads plainly in its test."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_counter = iter(range(1, 10**9))


def chan(name: str) -> str:
    """A channel of endpoint ``name`` with a fresh suffix (``PJSIP/137-0000002a``)."""
    return f"PJSIP/{name}-{next(_counter):08x}"


def cdr_row(**overrides: Any) -> dict[str, Any]:
    """An answered outbound call from 137 by default (FreePBX ``calldate`` layout)."""
    row: dict[str, Any] = {
        "calldate": datetime(2018, 7, 29, 16, 37, 32),
        "clid": '"137" <137>',
        "src": "137",
        "dst": "0982056720",
        "dcontext": "from-internal",
        "channel": chan("137"),
        "dstchannel": chan("viettel-trunk"),
        "lastapp": "Dial",
        "lastdata": "PJSIP/0982056720@viettel-trunk",
        "duration": 40,
        "billsec": 30,
        "disposition": "ANSWERED",
        "amaflags": 3,
        "accountcode": "acme",
        "uniqueid": "1532857052.131132",
        "linkedid": "1532857052.131132",
    }
    row.update(overrides)
    return row
