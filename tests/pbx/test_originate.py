"""makeDial's Originate: exact bytes on the wire, every Reason's result, hostile input refused."""

from __future__ import annotations

import asyncio

import pytest

from tests.pbx.ami_peer import AmiPeer, Transcript
from voip24h.pbx import originate
from voip24h.pbx.connection import AmiConnection
from voip24h.pbx.originate import (
    DialRefused,
    OriginateResult,
    OriginateSettings,
    Originator,
    build_originate,
    result_of,
)
from voip24h.pbx.target import parse_ami_url

SETTINGS = OriginateSettings(
    context="internal", channel_template="SIP/{user}", caller_id='"Click2Call" <{user}>',
    timeout_seconds=30,
)


def is_extension(name: str) -> bool:
    from voip24h.domain.mapping import ExtensionMatcher

    return ExtensionMatcher().is_extension(name)


async def dial(peer: AmiPeer, user: str, number: str) -> OriginateResult:
    connection = await AmiConnection.open(parse_ami_url(peer.url), timeout=2)
    try:
        originator = Originator(connection, SETTINGS, is_extension,
                                channel_ids=lambda: "1796592530.c2c0000000001",
                                action_ids=lambda: "v24h-dial-7")
        return await originator.dial(user, number, timeout=3)
    finally:
        await connection.close()


def test_make_dial_sends_exactly_this_originate() -> None:
    async def main() -> tuple[AmiPeer, OriginateResult]:
        async with AmiPeer(Transcript.load("originate")) as peer:
            return peer, await dial(peer, "101", "102")

    peer, result = asyncio.run(main())
    assert peer.actions("Originate") == [
        b"Action: Originate\r\n"
        b"ActionID: v24h-dial-7\r\n"
        b"Channel: SIP/101\r\n"
        b"Context: internal\r\n"
        b"Exten: 102\r\n"
        b"Priority: 1\r\n"
        b'CallerID: "Click2Call" <101>\r\n'
        b"Timeout: 30000\r\n"
        b"Async: true\r\n"
        b"ChannelId: 1796592530.c2c0000000001\r\n"
        b"Variable: VOIP24H_CALLID=1796592530.c2c0000000001\r\n"
        b"\r\n"
    ]
    # Asterisk's OriginateResponse (Reason 4, Success) for the recorded call.
    assert result == OriginateResult("answered", "1796592530.73", "1796592530.73",
                                     "1796592530.73", "4", "")


@pytest.mark.parametrize(("name", "callee", "expected", "reason"), [
    ("originate_busy", "102", "busy", "5"),
    ("originate_noanswer", "103", "no_answer", "3"),
])
def test_a_failed_originate_maps_its_reason(name: str, callee: str, expected: str,
                                            reason: str) -> None:
    async def main() -> OriginateResult:
        async with AmiPeer(Transcript.load(name)) as peer:
            return await dial(peer, callee, "101")

    result = asyncio.run(main())
    # Uniqueid is <unknown> on failure: the ChannelId we chose is the call's id.
    assert result == OriginateResult(expected, "1796592530.c2c0000000001",
                                     "1796592530.c2c0000000001", "1796592530.c2c0000000001",
                                     reason, "")


def test_every_reason_code_maps_to_its_result() -> None:
    def event(reason: str, response: str = "Failure") -> dict[str, str]:
        return {"Event": "OriginateResponse", "Response": response, "Reason": reason,
                "Uniqueid": "<unknown>"}

    assert {code: result_of(event(code), "c").result for code in "0123458"} == {
        "0": "failed", "1": "failed", "2": "no_answer", "3": "no_answer",
        "4": "answered", "5": "busy", "8": "congested",
    }
    assert result_of(event("7"), "c").result == "failed"
    assert result_of(event("4", "Success"), "c").result == "answered"
    refused = {"Response": "Error", "Message": "Extension does not exist."}
    assert result_of(refused, "c").result == "no_such_extension"
    assert result_of({"Response": "Error", "Message": "Permission denied"}, "c").result == "failed"


HOSTILE = ["101@other-context", "123&SIP/x", "1;2", "12a4", "abc", "1" * 21, "", "+",
           "++123", "123+", " 123", "123\r\nAction: Command", "\uff11\uff12\uff13"]


@pytest.mark.parametrize("number", HOSTILE)
def test_a_hostile_phone_number_is_refused_before_anything_is_sent(number: str) -> None:
    async def main() -> AmiPeer:
        async with AmiPeer(Transcript.load("originate")) as peer:
            with pytest.raises(DialRefused, match="phoneNumber"):
                await dial(peer, "101", number)
            return peer

    peer = asyncio.run(main())
    assert peer.actions("Originate") == []
    assert isinstance(DialRefused("x"), ValueError)


@pytest.mark.parametrize("user", ["trunk", "1", "1234567", "101&SIP/x", "", "600@x"])
def test_a_user_who_is_no_extension_is_refused(user: str) -> None:
    with pytest.raises(DialRefused, match="not an extension"):
        build_originate(user, "102", SETTINGS, is_extension=is_extension,
                        action_id="a", channel_id="c")


def test_twenty_digits_and_a_leading_plus_are_accepted() -> None:
    action = build_originate("137", "+1234567890123456789", SETTINGS,
                             is_extension=is_extension, action_id="a", channel_id="c")
    assert ("Exten", "+1234567890123456789") in action
    assert len("+1234567890123456789") == originate.MAX_PHONE_NUMBER
