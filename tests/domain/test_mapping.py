"""The mapping rules of docs/mapping.md, on hand-built CDR rows (pure, no database)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.builders import cdr_row, chan
from voip24h.domain.mapping import ExtensionMatcher, endpoint_name, records_for_call

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MATCHER = ExtensionMatcher()


def mapped(*rows):
    return {r.user: r for r in records_for_call(rows, MATCHER, ZONE)}


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        ("PJSIP/137-0000002a", "137"),
        ("SIP/137-00000abc", "137"),
        ("IAX2/137-1234", "137"),
        ("Local/137@from-queue-00000001;1", "137"),
        ("PJSIP/viettel-trunk-00000001", "viettel-trunk"),
        ("PJSIP/137-0000002a<ZOMBIE>", "137"),
        ("", None),
        ("garbage", None),
    ],
)
def test_endpoint_name(channel, name):
    assert endpoint_name(channel) == name


def test_outbound_answered():
    records = mapped(cdr_row())
    assert list(records) == ["137"]
    rec = records["137"]
    assert (rec.callid, rec.phone_number, rec.call_type, rec.direction, rec.call_status) == (
        "1532857052.131132",
        "0982056720",
        "EXTERNAL",
        "OUTBOUND",
        "ANSWERED",
    )
    assert rec.call_date == "2018-07-29 16:37:32"
    # The seed's invariant: the epoch part of callId is callDate read in UTC+7.
    assert rec.call_ts == 1532857052


def test_inbound_missed():
    row = cdr_row(
        src="0971828252",
        dst="201",
        channel=chan("vnpt-trunk"),
        dstchannel=chan("201"),
        disposition="NO ANSWER",
        billsec=0,
    )
    rec = mapped(row)["201"]
    assert (rec.phone_number, rec.call_type, rec.direction, rec.call_status) == (
        "0971828252",
        "EXTERNAL",
        "INBOUND",
        "NO ANSWER",
    )


def test_inbound_never_reached_extension_uses_dst():
    row = cdr_row(
        src="0971828252", dst="201", channel=chan("vnpt-trunk"), dstchannel="", disposition="FAILED"
    )
    assert mapped(row)["201"].direction == "INBOUND"


def test_internal_call_gives_two_records():
    records = mapped(cdr_row(src="101", dst="102", channel=chan("101"), dstchannel=chan("102")))
    assert set(records) == {"101", "102"}
    assert records["101"].phone_number == "102" and records["102"].phone_number == "101"
    assert {r.call_type for r in records.values()} == {"INTERNAL"}


def test_queue_ringing_three_agents_one_answers():
    caller = chan("viettel-trunk")
    rows = [
        cdr_row(
            src="0982056720",
            dst="600",
            channel=caller,
            dstchannel=f"Local/{agent}@from-queue-0000000{i};1",
            disposition=disp,
            billsec=60 if disp == "ANSWERED" else 0,
        )
        for i, (agent, disp) in enumerate(
            [("201", "NO ANSWER"), ("202", "ANSWERED"), ("203", "NO ANSWER")]
        )
    ]
    records = mapped(*rows)
    assert {u: r.call_status for u, r in records.items()} == {
        "201": "NO ANSWER",
        "202": "ANSWERED",
        "203": "NO ANSWER",
    }
    assert {r.callid for r in records.values()} == {"1532857052.131132"}
    assert all(r.phone_number == "0982056720" for r in records.values())


def test_forked_dial_one_record_per_user_best_disposition_and_earliest_date():
    later = datetime(2018, 7, 29, 16, 37, 40)
    rows = [
        cdr_row(disposition="NO ANSWER", billsec=0),
        cdr_row(calldate=later, disposition="BUSY", billsec=0),
        cdr_row(calldate=later, disposition="ANSWERED", billsec=12),
        cdr_row(calldate=later, disposition="ANSWERED", billsec=95, dst="0900000001"),
    ]
    records = mapped(*rows)
    assert len(records) == 1
    rec = records["137"]
    assert rec.call_status == "ANSWERED"
    assert rec.billsec == 95 and rec.phone_number == "0900000001"  # larger billsec wins
    assert rec.call_date == "2018-07-29 16:37:32"  # earliest calldate of the group


def test_billsec_does_not_make_a_call_answered():
    rec = mapped(cdr_row(disposition="NO ANSWER", billsec=17))["137"]
    assert rec.call_status == "NO ANSWER"


def test_trunk_to_trunk_gives_no_record():
    row = cdr_row(
        src="0982056720",
        dst="0971828252",
        channel=chan("viettel-trunk"),
        dstchannel=chan("vnpt-trunk"),
    )
    assert mapped(row) == {}


def test_ivr_only_gives_no_record():
    assert mapped(cdr_row(channel=chan("viettel-trunk"), dstchannel="", dst="s")) == {}


def test_freepbx_cnum_identifies_the_caller():
    row = cdr_row(channel="DAHDI/i1/0243456789-1", cnum="137", dst="0982056720")
    assert mapped(row)["137"].direction == "OUTBOUND"


def test_asterisk_start_schema():
    row = cdr_row()
    row["start"] = row.pop("calldate")
    assert mapped(row)["137"].call_date == "2018-07-29 16:37:32"


def test_fullwidth_digits_are_not_an_extension():
    assert not MATCHER.is_extension("\uff11\uff10\uff11")
    assert mapped(cdr_row(channel="PJSIP/\uff11\uff13\uff17-00000001")) == {}


def test_explicit_extension_list_replaces_pattern():
    matcher = ExtensionMatcher(explicit="100-199,sales")
    assert matcher.is_extension("137") and matcher.is_extension("sales")
    assert not matcher.is_extension("201") and not matcher.is_extension("1370")


def test_choice_on_a_full_tie_does_not_depend_on_row_order():
    first = cdr_row(
        disposition="NO ANSWER", billsec=0, dst="0900000001", sequence=None, row_key="a"
    )
    second = cdr_row(disposition="NO ANSWER", billsec=0, dst="0900000002", sequence=3, row_key="b")
    assert mapped(first, second)["137"].phone_number == "0900000001"
    assert mapped(second, first)["137"].phone_number == "0900000001"
