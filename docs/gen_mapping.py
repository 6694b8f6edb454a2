"""The worked examples of docs/mapping.md: CDR rows, and the records voip24h makes of them.

A line ``<!-- mapping-example: NAME -->`` in mapping.md is replaced, when the site
builds, by the rows of MAPPING_EXAMPLES[NAME] as a table and the records that
``voip24h.domain.mapping.records_for_call`` makes of them, so the page shows what the server does.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

MAPPING_COLUMNS = (
    "calldate",
    "uniqueid",
    "src",
    "dst",
    "channel",
    "dstchannel",
    "lastapp",
    "disposition",
    "billsec",
)


def _row(
    calldate: str,
    uniqueid: str,
    src: str,
    dst: str,
    channel: str,
    dstchannel: str,
    disposition: str,
    billsec: int,
    lastapp: str = "Dial",
) -> dict[str, Any]:
    return {
        "calldate": datetime.fromisoformat(calldate),
        "uniqueid": uniqueid,
        "src": src,
        "dst": dst,
        "channel": channel,
        "dstchannel": dstchannel,
        "lastapp": lastapp,
        "disposition": disposition,
        "billsec": billsec,
        "duration": billsec + 10,
        "accountcode": "acme",
    }


MAPPING_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "queue": [
        _row(
            "2018-07-26 10:00:00",
            "1532574000.126003",
            "0987654321",
            "600",
            "PJSIP/vnpt-trunk-00000030",
            "Local/101@from-queue-00000031;1",
            "NO ANSWER",
            0,
            "Queue",
        ),
        _row(
            "2018-07-26 10:00:01",
            "1532574000.126003",
            "0987654321",
            "600",
            "PJSIP/vnpt-trunk-00000030",
            "Local/102@from-queue-00000032;1",
            "ANSWERED",
            210,
            "Queue",
        ),
        _row(  # the member's own Local leg: Local channel plumbing, no record
            "2018-07-26 10:00:01",
            "1532574001.126004",
            "0987654321",
            "102",
            "Local/102@from-queue-00000032;2",
            "PJSIP/102-00000034",
            "ANSWERED",
            210,
        ),
        _row(
            "2018-07-26 10:00:20",
            "1532574000.126003",
            "0987654321",
            "600",
            "PJSIP/vnpt-trunk-00000030",
            "Local/101@from-queue-00000033;1",
            "NO ANSWER",
            0,
            "Queue",
        ),
    ],
    "transfer": [
        _row(
            "2018-07-28 15:45:00",
            "1532767500.128005",
            "0938111222",
            "101",
            "PJSIP/mobifone-trunk-00000050",
            "PJSIP/101-00000051",
            "ANSWERED",
            30,
        ),
        _row(
            "2018-07-28 15:45:42",
            "1532767500.128005",
            "0938111222",
            "137",
            "PJSIP/mobifone-trunk-00000050",
            "PJSIP/137-00000052",
            "ANSWERED",
            95,
        ),
    ],
    "internal": [
        _row(
            "2018-07-27 11:30:00",
            "1532665800.127004",
            "101",
            "137",
            "PJSIP/101-00000040",
            "PJSIP/137-00000041",
            "ANSWERED",
            45,
        ),
    ],
    "ivr": [
        _row(
            "2018-07-28 20:10:00",
            "1532783400.128006",
            "0977000111",
            "s",
            "PJSIP/viettel-trunk-00000060",
            "",
            "ANSWERED",
            20,
            "Playback",
        ),
    ],
    "one-party": [
        _row(  # 101 calls 137, then parks the call (Park): the parker's row is his alone
            "2018-07-29 09:00:00",
            "1532829600.129001",
            "101",
            "137",
            "PJSIP/101-00000070",
            "PJSIP/137-00000071",
            "ANSWERED",
            12,
        ),
        _row(
            "2018-07-29 09:00:14",
            "1532829600.129001",
            "137",
            "s",
            "PJSIP/137-00000071",
            "",
            "ANSWERED",
            8,
            "Park",
        ),
        _row(  # 137 checks voicemail (*98)
            "2018-07-29 09:05:00",
            "1532829900.129002",
            "137",
            "*98",
            "PJSIP/137-00000072",
            "",
            "ANSWERED",
            30,
            "VoiceMailMain",
        ),
    ],
}


def mapping_records(name: str) -> list[dict[str, str]]:
    """The wire records voip24h.domain.mapping makes of one example's rows (default settings)."""
    from zoneinfo import ZoneInfo

    from voip24h.domain.mapping import ExtensionMatcher, records_for_call

    records = records_for_call(
        MAPPING_EXAMPLES[name], ExtensionMatcher(), ZoneInfo("Asia/Ho_Chi_Minh")
    )
    wire = [
        {
            "callId": r.callid,
            "user": r.user,
            "phoneNumber": r.phone_number,
            "callType": r.call_type,
            "callStatus": r.call_status,
            "callDate": r.call_date,
        }
        for r in records
    ]
    return sorted(wire, key=lambda r: (r["callDate"], r["user"]), reverse=True)


def mapping_block(name: str) -> str:
    """Markdown: the example's CDR rows as a table, then the records they become."""
    lines = ["| " + " | ".join(MAPPING_COLUMNS) + " |", "|" + " --- |" * len(MAPPING_COLUMNS)]
    for row in MAPPING_EXAMPLES[name]:
        cells = [str(row[c]) if row[c] != "" else "*(empty)*" for c in MAPPING_COLUMNS]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    records = mapping_records(name)
    lines += [
        "",
        f"becomes {len(records) or 'no'} record{'s' if len(records) != 1 else ''}"
        + (":" if records else "."),
        "",
    ]
    if records:
        lines += ["```json", json.dumps(records, indent=2), "```"]
    return "\n".join(lines) + "\n"


def fill_mapping(markdown: str) -> str:
    """Replace each ``<!-- mapping-example: NAME -->`` line with that example's block."""
    out = []
    for line in markdown.splitlines(keepends=True):
        marker = line.strip()
        if marker.startswith("<!-- mapping-example:") and marker.endswith("-->"):
            name = marker[len("<!-- mapping-example:") : -3].strip()
            out.append(mapping_block(name))
        else:
            out.append(line)
    return "".join(out)
