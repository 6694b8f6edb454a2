"""AMI framing: a message split anywhere comes out whole; no header can be smuggled in."""

from __future__ import annotations

import pytest

from tests.pbx.ami_peer import Transcript
from voip24h.pbx.protocol import MessageReader, ProtocolError, encode_action, parse_banner


def test_messages_come_out_whole_however_the_bytes_are_split() -> None:
    data = b"".join(step.reply for step in Transcript.load("originate").steps)
    whole = MessageReader().feed(data)
    reader = MessageReader()
    byte_by_byte = [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]
    assert byte_by_byte == whole and len(whole) > 50
    response = next(m for m in whole if m.get("Event") == "OriginateResponse")
    assert response["Reason"] == "4" and response["ActionID"] == "orig-1"


def test_a_repeated_header_keeps_every_value() -> None:
    [message] = MessageReader().feed(b"Response: Success\r\nOutput: a\r\nOutput: b\r\n\r\n")
    assert message == {"Response": "Success", "Output": "a\nb"}


def test_an_action_cannot_carry_a_line_break() -> None:
    assert encode_action([("Action", "Ping"), ("ActionID", "1")]) == (
        b"Action: Ping\r\nActionID: 1\r\n\r\n"
    )
    for key, value in [
        ("Exten", "1\r\nAction: Command"),
        ("Exten", "1\n"),
        ("Ex ten", "1"),
        ("Exten:", "1"),
        ("", "1"),
    ]:
        with pytest.raises(ProtocolError):
            encode_action([("Action", "Originate"), (key, value)])


def test_the_banner_names_the_ami_version_and_anything_else_is_refused() -> None:
    assert parse_banner(b"Asterisk Call Manager/9.0.0\r\n") == "9.0.0"
    with pytest.raises(ProtocolError):
        parse_banner(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_a_reader_with_wanted_events_skips_the_others_but_never_a_response() -> None:
    data = b"".join(step.reply for step in Transcript.load("queue_call").steps)
    every = MessageReader().feed(data)
    wanted = frozenset({"Newchannel", "Hangup"})
    kept = MessageReader(wanted).feed(data)
    assert kept == [m for m in every if "Event" not in m or m["Event"] in wanted]
    assert {m["Event"] for m in kept if "Event" in m} == wanted
    assert any("Response" in m for m in kept) and len(kept) < len(every) / 4
