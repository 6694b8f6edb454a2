"""The v2 rules of the mapping (docs/mapping.md), on rows shaped as the Asterisk
testsuite's expected CDRs say Asterisk 12+ writes them. Pure, no database."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tests.builders import cdr_row, chan
from voip24h.domain.mapping import ExtensionMatcher, records_for_call

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MATCHER = ExtensionMatcher()


def mapped(*rows):
    return {r.user: r for r in records_for_call(list(rows), MATCHER, ZONE)}


def test_park_rows_are_one_party_and_make_no_record():
    # asterisk/testsuite tests/bridge/parkcall/test-config.yaml (cdr-config-12plus):
    # after the answered Dial row, the parker's own row has an empty dchannel and
    # lastapp Park, lastarg default:701.
    dial = cdr_row(src="1234", dst="4321", channel=chan("1234"), dstchannel=chan("4321"))
    park = cdr_row(
        src="4321",
        dst="s",
        channel=chan("4321"),
        dstchannel="",
        lastapp="Park",
        lastdata="default:701",
        uniqueid="1532857052.131133",
    )
    assert set(mapped(dial)) == {"1234", "4321"}
    assert mapped(park) == {}


def test_queue_member_local_leg_is_no_self_call():
    # FreePBX queue: the member's Local/101@from-queue-…;2 leg rings PJSIP/101.
    local_leg = cdr_row(
        src="0987654321",
        dst="101",
        channel="Local/101@from-queue-00000031;2",
        dstchannel=chan("101"),
        lastapp="Dial",
        disposition="NO ANSWER",
        billsec=0,
    )
    assert mapped(local_leg) == {}
    caller_row = cdr_row(
        src="0987654321",
        dst="600",
        channel=chan("viettel-trunk"),
        dstchannel="Local/101@from-queue-00000031;1",
        lastapp="Queue",
    )
    record = mapped(caller_row)["101"]
    assert (record.phone_number, record.direction) == ("0987654321", "INBOUND")


def test_feature_numbers_in_dst_are_never_users():
    # A queue nobody was rung from, a conference, an IVR, voicemail: dst is a number
    # of the dialplan, lastapp not Dial, no dstchannel.
    for app, dst in (
        ("Queue", "600"),
        ("ConfBridge", "8000"),
        ("Playback", "800"),
        ("VoiceMailMain", "*98"),
    ):
        row = cdr_row(src="137", dst=dst, dstchannel="", lastapp=app)
        assert mapped(row) == {}, app


def test_a_dial_that_never_got_a_channel_names_its_callee():
    # CHANUNAVAIL: dstchannel empty, lastapp Dial, dst the extension dialled.
    row = cdr_row(dst="199", dstchannel="", lastapp="Dial", disposition="FAILED", billsec=0)
    records = mapped(row)
    assert set(records) == {"137", "199"}
    assert records["137"].call_type == "INTERNAL"
    # Out to a number that is no extension: outbound, FAILED as written.
    out = mapped(cdr_row(dstchannel="", lastapp="Dial", disposition="CONGESTION"))["137"]
    assert (out.direction, out.phone_number, out.call_status) == (
        "OUTBOUND",
        "0982056720",
        "CONGESTION",
    )


def test_originate_leg_to_s_makes_no_record():
    row = cdr_row(dst="s", dstchannel="", lastapp="AppDial2", lastdata="(Outgoing Line)")
    assert mapped(row) == {}


def test_the_callee_side_has_the_peeraccount_tenant():
    # An inbound call from a trunk: accountcode empty, Asterisk put the callee's in peeraccount.
    inbound = cdr_row(
        src="0987654321",
        dst="137",
        channel=chan("viettel-trunk"),
        dstchannel=chan("137"),
        accountcode="",
        peeraccount="acme",
    )
    assert mapped(inbound)["137"].accountcode == "acme"
    # Internal across tenants: each side its own.
    internal = cdr_row(dst="101", dstchannel=chan("101"), accountcode="acme", peeraccount="beta")
    records = mapped(internal)
    assert (records["137"].accountcode, records["101"].accountcode) == ("acme", "beta")
    # No peeraccount (Master.csv without newcdrcolumns): the row's accountcode.
    plain = cdr_row(dst="101", dstchannel=chan("101"), accountcode="acme", peeraccount="")
    assert {r.accountcode for r in mapped(plain).values()} == {"acme"}
