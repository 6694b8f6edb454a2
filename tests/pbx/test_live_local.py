"""Local channel plumbing (FreePBX queues and ring groups) gives one set of events per agent.

The Asterisk 20 captures use chan_sip members directly, so these events are written by
hand in the shape Asterisk gives a queue whose members are ``Local/NNN@from-queue``:
the queue dials ``Local/101@from-queue-…;1``, whose ``;2`` half dials ``PJSIP/101-…``.
"""

from __future__ import annotations

from tests.pbx.live_check import matcher, summary
from voip24h.pbx.live import LiveCalls, LiveEvent

CALL = "1796600000.10"
CHANNELS = {
    "T": "PJSIP/trunk-00000001",
    "A1": "Local/101@from-queue-00000001;1", "A2": "Local/101@from-queue-00000001;2",
    "A": "PJSIP/101-00000002",
    "B1": "Local/102@from-queue-00000002;1", "B2": "Local/102@from-queue-00000002;2",
    "B": "PJSIP/102-00000003",
}


def chan(key: str, prefix: str = "", **extra: str) -> dict[str, str]:
    fields = {"Channel": CHANNELS[key], "Uniqueid": CALL if key == "T" else f"{CALL}{key}",
              "Linkedid": CALL, "CallerIDNum": "2125550123" if key == "T" else "",
              "AccountCode": "tenantA" if key == "T" else "", "Exten": "600"}
    return {prefix + k: v for k, v in fields.items()} | extra


def ev(name: str, key: str, dest: str | None = None, **extra: str) -> dict[str, str]:
    return {"Event": name, **chan(key), **(chan(dest, "Dest") if dest else {}), **extra}


def queue_with_local_members() -> list[dict[str, str]]:
    events = [ev("Newchannel", "T", ChannelState="0"), ev("Newstate", "T", ChannelState="4")]
    for member in "AB":
        one, two = f"{member}1", f"{member}2"
        events += [ev("Newchannel", one, ChannelState="0"),
                   ev("Newchannel", two, ChannelState="4"),
                   ev("DialBegin", "T", one),
                   ev("Newstate", two, ChannelState="4"),
                   ev("Newchannel", member, ChannelState="0"),
                   ev("DialBegin", two, member),
                   ev("Newstate", member, ChannelState="5", ConnectedLineNum="2125550123"),
                   ev("Newstate", one, ChannelState="5")]
    events += [ev("Newstate", "A", ChannelState="6"), ev("DialEnd", "A2", "A", DialStatus="ANSWER"),
               ev("Newstate", "A2", ChannelState="6"), ev("Newstate", "A1", ChannelState="6"),
               ev("DialEnd", "T", "A1", DialStatus="ANSWER"),
               ev("DialEnd", "T", "B1", DialStatus="CANCEL"),
               ev("DialEnd", "B2", "B", DialStatus="CANCEL"),
               ev("Hangup", "B", Cause="26"), ev("Hangup", "B2", Cause="26"),
               ev("Hangup", "B1", Cause="26"),
               ev("BridgeEnter", "A1"), ev("BridgeEnter", "T"),
               ev("BridgeEnter", "A2"), ev("BridgeEnter", "A"),
               ev("Hangup", "A", Cause="16"), ev("Hangup", "A2", Cause="16"),
               ev("Hangup", "A1", Cause="16"), ev("Hangup", "T", Cause="16")]
    return events


def test_local_halves_and_the_phone_they_ring_make_one_leg_per_agent() -> None:
    live = LiveCalls(matcher())
    events: list[LiveEvent] = []
    for event in queue_with_local_members():
        events += live.feed(event)
    assert summary(events) == [
        ("101", "call.ringing", 1, "2125550123", "inbound", None),
        ("102", "call.ringing", 1, "2125550123", "inbound", None),
        ("101", "call.answered", 2, "2125550123", "inbound", None),
        ("102", "call.ended", 2, "2125550123", "inbound", "answered_elsewhere"),
        ("101", "call.ended", 3, "2125550123", "inbound", "answered"),
    ]
    assert {e.tenant for e in events} == {"tenantA"} and live.open_calls == 0


def test_events_after_a_hangup_do_not_revive_the_channel() -> None:
    live = LiveCalls(matcher())
    for event in queue_with_local_members():
        live.feed(event)
    assert live.feed(ev("BridgeLeave", "A")) == [] and live.feed(ev("Newstate", "A",
                                                                     ChannelState="6")) == []
    assert live.open_calls == 0
