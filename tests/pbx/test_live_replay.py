"""Replayed Asterisk 20 calls, over a real socket, give the right live events per extension."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.pbx.ami_peer import FIXTURES, AmiPeer, Transcript
from tests.pbx.live_check import matcher, summary
from voip24h.pbx.backoff import Backoff
from voip24h.pbx.link import PbxLink
from voip24h.pbx.live import LiveCalls, LiveEvent
from voip24h.pbx.protocol import Message
from voip24h.pbx.target import parse_ami_url


async def replay(peer: AmiPeer, until: Callable[[list[LiveEvent], LiveCalls], bool],
                 **link_options: object) -> tuple[list[LiveEvent], PbxLink, LiveCalls]:
    """Run a link against ``peer`` feeding LiveCalls until ``until`` holds (5 s at most)."""
    live = LiveCalls(matcher())
    events: list[LiveEvent] = []

    def on_event(message: Message) -> None:
        events.extend(live.feed(message))

    options = {"backoff": Backoff(0.01, 0.05), "ping_interval": 30.0, **link_options}
    link = PbxLink(parse_ami_url(peer.url), listeners=[on_event], **options)  # type: ignore[arg-type]
    runner = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(5):
            while not until(events, live):
                await asyncio.sleep(0.005)
    finally:
        link.stop()
        await runner
    return events, link, live


QUEUE = [
    ("101", "call.ringing", 1, "+15551239999", "inbound", None),
    ("102", "call.ringing", 1, "+15551239999", "inbound", None),
    ("101", "call.answered", 2, "+15551239999", "inbound", None),
    ("102", "call.ended", 2, "+15551239999", "inbound", "answered_elsewhere"),
    ("101", "call.ended", 3, "+15551239999", "inbound", "answered"),
]


def test_the_transcript_peer_replays_exactly_what_asterisk_sent() -> None:
    transcript = Transcript.load("queue_call")
    assert transcript.server_bytes() == (FIXTURES / "queue_call.rx.txt").read_bytes()
    assert transcript.client_bytes() == (FIXTURES / "queue_call.tx.txt").read_bytes()


def test_a_queue_call_rings_both_members_and_only_the_one_who_answers_is_answered() -> None:
    async def main() -> list[LiveEvent]:
        async with AmiPeer(Transcript.load("queue_call")) as peer:
            events, _, live = await replay(peer, lambda ev, live: len(ev) >= 5)
            await asyncio.sleep(0.05)  # nothing more may follow
            assert live.open_calls == 0
            return events

    events = asyncio.run(main())
    assert summary(events) == QUEUE
    assert {e.call_id for e in events} == {"1796592540.75"}  # the Linkedid: the records' callId
    assert {e.tenant for e in events} == {"tenantA"}  # the trunk channel's AccountCode
    ringing = events[0].occurred_at
    assert ringing.tzinfo is not None and ringing.utcoffset().total_seconds() == 0
    assert ringing.isoformat() == "2026-12-06T21:29:00.365662+00:00"


def test_only_the_events_live_calls_read_give_the_same_events() -> None:
    from voip24h.pbx.runner import WANTED

    async def main() -> list[LiveEvent]:
        async with AmiPeer(Transcript.load("queue_call")) as peer:
            events, _, _ = await replay(peer, lambda ev, live: len(ev) >= 5, wanted=WANTED)
            return events

    assert summary(asyncio.run(main())) == QUEUE


def test_a_slow_peer_dribbling_bytes_gives_the_same_events() -> None:
    async def main() -> list[LiveEvent]:
        async with AmiPeer(Transcript.load("queue_call"), chunk=997, delay=0.001) as peer:
            events, _, _ = await replay(peer, lambda ev, live: len(ev) >= 5)
            return events

    assert summary(asyncio.run(main())) == QUEUE


def test_a_whole_pass_gives_events_only_for_extensions_and_the_first_call_is_right() -> None:
    async def main() -> tuple[list[LiveEvent], LiveCalls]:
        async with AmiPeer(Transcript.load("firehose_pass1")) as peer:
            events, _, live = await replay(peer, lambda ev, live: len(ev) >= 137)
            await asyncio.sleep(0.05)
            return events, live

    events, live = asyncio.run(main())
    first = [e for e in events if e.call_id == "1796592265.0"]
    assert summary(first) == [
        ("101", "call.ringing", 1, "102", "internal", None),
        ("102", "call.ringing", 1, "101", "internal", None),
        ("102", "call.answered", 2, "101", "internal", None),
        ("101", "call.answered", 2, "102", "internal", None),
        ("101", "call.ended", 3, "102", "internal", "answered"),
        ("102", "call.ended", 3, "101", "internal", "answered"),
    ]
    assert {e.user for e in events} == {"101", "102", "103", "137"}  # never 600, trunk, 800
    assert len(events) == 137 and live.open_calls == 0
    by_leg: dict[tuple[str, str], list[int]] = {}
    for e in events:
        by_leg.setdefault((e.call_id, e.user), []).append(e.sequence)
    assert all(seq == list(range(1, len(seq) + 1)) for seq in by_leg.values())
    outbound = [e for e in events if e.call_id == "1796592294.8"]
    assert summary(outbound)[0] == ("101", "call.ringing", 1, "2125551234", "outbound", None)
    busy = [e for e in events if e.call_id == "1796592393.39"]
    assert summary(busy) == [("101", "call.ringing", 1, "102", "internal", None),
                             ("101", "call.ended", 2, "102", "internal", "busy")]
