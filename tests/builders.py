"""Hand-built CDR rows, so each mapping case reads plainly in its test."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_counter = iter(range(1, 10**9))
# The recording of the seed's call 1532857052.131132.
REC = "out-0982056720-137-20180729-163732-1532857052.131132.wav"


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
    if "uniqueid" in overrides and "linkedid" not in overrides:
        row["linkedid"] = overrides["uniqueid"]  # a call of its own, as Asterisk writes it
    return row


def calls() -> list[dict[str, Any]]:
    """A small PBX day: outbound, inbound, internal, linked queue legs, two tenants."""
    return [
        cdr_row(  # outbound, answered, recorded
            uniqueid="1532857052.131132",
            linkedid="1532857052.131132",
            recordingfile=REC,
            duration=40,
            billsec=30,
        ),
        cdr_row(  # inbound, missed, on a DID
            uniqueid="1532834934.130789",
            linkedid="1532834934.130789",
            calldate=datetime(2018, 7, 29, 10, 28, 54),
            src="0971828252",
            dst="137",
            channel=chan("viettel-trunk"),
            dstchannel=chan("137"),
            did="02873001234",
            disposition="NO ANSWER",
            duration=20,
            billsec=0,
        ),
        cdr_row(  # internal 101 -> 102
            uniqueid="1532743200.5",
            linkedid="1532743200.5",
            calldate=datetime(2018, 7, 28, 9, 0, 0),
            src="101",
            dst="102",
            channel=chan("101"),
            dstchannel=chan("102"),
            duration=70,
            billsec=60,
        ),
        cdr_row(  # outbound busy to an international number
            uniqueid="1532754000.9",
            linkedid="1532754000.9",
            calldate=datetime(2018, 7, 28, 12, 0, 0),
            src="101",
            dst="+84912345678",
            channel=chan("101"),
            disposition="BUSY",
            duration=5,
            billsec=0,
        ),
        cdr_row(  # queue call: two legs with their own uniqueid, one linkedid
            uniqueid="1532840000.1",
            linkedid="1532840000.1",
            calldate=datetime(2018, 7, 29, 12, 13, 20),
            src="0909000111",
            dst="200",
            channel=chan("viettel-trunk"),
            dstchannel=chan("200"),
            disposition="NO ANSWER",
            billsec=0,
        ),
        cdr_row(
            uniqueid="1532840001.2",
            linkedid="1532840000.1",
            calldate=datetime(2018, 7, 29, 12, 13, 21),
            src="0909000111",
            dst="201",
            channel=chan("viettel-trunk"),
            dstchannel=chan("201"),
            billsec=95,
            duration=100,
        ),
        cdr_row(  # another tenant's 137
            uniqueid="1532850000.7",
            linkedid="1532850000.7",
            calldate=datetime(2018, 7, 29, 14, 40, 0),
            accountcode="globex",
            dst="0988777666",
        ),
    ]
