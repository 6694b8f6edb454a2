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
    "linkedid",
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
    linkedid: str | None = None,
) -> dict[str, Any]:
    """One CDR row as Asterisk 12+ writes it (linkedid: the uniqueid unless given)."""
    return {
        "calldate": datetime.fromisoformat(calldate),
        "uniqueid": uniqueid,
        "linkedid": uniqueid if linkedid is None else linkedid,
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


TRUNK = "PJSIP/viettel-trunk-000000"
Q = "1532574000.126003"  # the queue call's first channel

MAPPING_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "queue": [
        _row("2018-07-26 10:00:00", Q, "0987654321", "600", "PJSIP/vnpt-trunk-00000030",
             "Local/101@from-queue-00000031;1", "NO ANSWER", 0, "Queue"),
        _row("2018-07-26 10:00:01", Q, "0987654321", "600", "PJSIP/vnpt-trunk-00000030",
             "Local/102@from-queue-00000032;1", "ANSWERED", 210, "Queue"),
        # the member's own Local leg: Local channel plumbing, no record
        _row("2018-07-26 10:00:01", "1532574001.126004", "0987654321", "102",
             "Local/102@from-queue-00000032;2", "PJSIP/102-00000034", "ANSWERED", 210,
             linkedid=Q),
        _row("2018-07-26 10:00:20", Q, "0987654321", "600", "PJSIP/vnpt-trunk-00000030",
             "Local/101@from-queue-00000033;1", "NO ANSWER", 0, "Queue"),
    ],
    "ring-group": [
        _row("2018-07-26 11:00:00", "1532577600.126100", "0912000111", "700", TRUNK + "70",
             "PJSIP/101-00000071", "BUSY", 0),
        _row("2018-07-26 11:00:00", "1532577600.126100", "0912000111", "700", TRUNK + "70",
             "PJSIP/102-00000072", "NO ANSWER", 0),
        _row("2018-07-26 11:00:00", "1532577600.126100", "0912000111", "700", TRUNK + "70",
             "PJSIP/103-00000073", "ANSWERED", 64),
    ],
    "transfer": [
        _row("2018-07-28 15:45:00", "1532767500.128005", "0938111222", "101",
             "PJSIP/mobifone-trunk-00000050", "PJSIP/101-00000051", "ANSWERED", 30),
        _row("2018-07-28 15:45:42", "1532767500.128005", "0938111222", "137",
             "PJSIP/mobifone-trunk-00000050", "PJSIP/137-00000052", "ANSWERED", 95),
    ],
    "transfer-by-caller": [
        _row("2018-07-28 16:00:00", "1532768400.128100", "101", "102", "PJSIP/101-00000060",
             "PJSIP/102-00000061", "ANSWERED", 3),
        # 101 sent 102 on to 103: the row is 102's channel, with 102's uniqueid
        _row("2018-07-28 16:00:05", "1532768400.128101", "102", "103", "PJSIP/102-00000061",
             "PJSIP/103-00000062", "ANSWERED", 40, linkedid="1532768400.128100"),
    ],
    "attended-transfer": [
        _row("2018-07-28 17:00:00", "1532772000.128200", "0938333444", "101", TRUNK + "80",
             "PJSIP/101-00000081", "ANSWERED", 20),
        # 101 puts the customer on hold and calls 102 to ask: a call of its own
        _row("2018-07-28 17:00:22", "1532772022.128202", "101", "102", "PJSIP/101-00000082",
             "PJSIP/102-00000083", "ANSWERED", 9),
        # 101 completes the transfer: the customer's channel now talks to 102
        _row("2018-07-28 17:00:33", "1532772000.128200", "0938333444", "101", TRUNK + "80",
             "PJSIP/102-00000083", "ANSWERED", 120),
    ],
    "park": [
        _row("2018-07-29 09:00:00", "1532829600.129001", "0977111222", "101", TRUNK + "90",
             "PJSIP/101-00000091", "ANSWERED", 12),
        # 101 parks the caller (70): the parked channel's row is the caller's alone
        _row("2018-07-29 09:00:14", "1532829600.129001", "0977111222", "70", TRUNK + "90",
             "", "ANSWERED", 25, "Park"),
        # 137 picks it up from the lot: the call goes on with 137
        _row("2018-07-29 09:00:39", "1532829600.129001", "0977111222", "71", TRUNK + "90",
             "PJSIP/137-00000093", "ANSWERED", 60, "ParkedCall"),
    ],
    "originate": [
        # Click-to-call (AMI Originate): 101 rings first, answers, then 102 is dialled
        _row("2018-07-29 10:00:00", "1532833200.129100", "101", "102", "PJSIP/101-000000a0",
             "PJSIP/102-000000a1", "ANSWERED", 33),
        # another originate: 103 never answered its own phone, nothing was dialled
        _row("2018-07-29 10:05:00", "1532833500.129102", "103", "", "PJSIP/103-000000a2",
             "", "NO ANSWER", 0, "AppDial2"),
    ],
    "internal": [
        _row("2018-07-27 11:30:00", "1532665800.127004", "101", "137", "PJSIP/101-00000040",
             "PJSIP/137-00000041", "ANSWERED", 45),
    ],
    "ivr": [
        _row("2018-07-28 20:10:00", "1532783400.128006", "0977000111", "s", TRUNK + "60",
             "", "ANSWERED", 20, "Playback"),
    ],
    "conference": [
        _row("2018-07-29 11:00:00", "1532836800.129200", "101", "8000", "PJSIP/101-000000b0",
             "", "ANSWERED", 300, "ConfBridge"),
        _row("2018-07-29 11:00:10", "1532836810.129201", "0909555666", "8000", TRUNK + "b1",
             "", "ANSWERED", 290, "ConfBridge"),
    ],
    "voicemail": [
        # nobody answers 101: the caller leaves a message (the second row)
        _row("2018-07-29 12:00:00", "1532840400.129300", "0988000999", "101", TRUNK + "c0",
             "PJSIP/101-000000c1", "NO ANSWER", 0),
        _row("2018-07-29 12:00:20", "1532840400.129300", "0988000999", "101", TRUNK + "c0",
             "", "ANSWERED", 35, "VoiceMail"),
        # 137 checks voicemail (*98): his row alone
        _row("2018-07-29 12:30:00", "1532842200.129302", "137", "*98", "PJSIP/137-000000c2",
             "", "ANSWERED", 30, "VoiceMailMain"),
    ],
    "unregistered": [
        # the DID rings 137, whose phone is not registered (CHANUNAVAIL): no channel
        _row("2018-07-29 13:00:00", "1532844000.129400", "0933444555", "137", TRUNK + "d0",
             "", "FAILED", 0),
    ],
    "stock": [
        # a stock Master.csv (loguniqueid=no): no uniqueid, no linkedid; a ring group
        # of two forks, then the row written when the caller hung up
        _row("2018-07-29 14:00:00", "", "0944555666", "700", "SIP/trunk-0000003e",
             "SIP/101-0000003f", "NO ANSWER", 0),
        _row("2018-07-29 14:00:00", "", "0944555666", "700", "SIP/trunk-0000003e",
             "SIP/102-00000040", "ANSWERED", 50),
        _row("2018-07-29 14:01:00", "", "0944555666", "700", "SIP/trunk-0000003e",
             "", "ANSWERED", 0, "Hangup"),
    ],
}  # fmt: skip


def mapping_records(name: str) -> list[dict[str, str]]:
    """The wire records voip24h makes of one example's rows (default settings): rows
    normalized, grouped into conversations, and mapped, as an import does."""
    from zoneinfo import ZoneInfo

    from voip24h.domain import conversations
    from voip24h.domain.cdr import normalize
    from voip24h.domain.mapping import ExtensionMatcher, group_by_callid, records_for_call

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    rows = [normalize(row, zone) for row in MAPPING_EXAMPLES[name]]
    conversations.link([row for row in rows if not row["callid"]], zone)
    matcher = ExtensionMatcher()
    records = [
        record
        for call in group_by_callid(rows).values()
        for record in records_for_call(call, matcher, zone)
    ]
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
