"""Live call events land in the events outbox, scoped like records, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from tests.pbx.ami_peer import AmiPeer, Transcript
from tests.pbx.live_check import matcher
from voip24h.db.queries.events import events_for_partner
from voip24h.domain.partners import Scope, parse_extensions
from voip24h.pbx.backoff import Backoff
from voip24h.pbx.link import PbxLink
from voip24h.pbx.live import LiveCalls, LiveEvent
from voip24h.pbx.outbox import LiveOutbox
from voip24h.pbx.protocol import Message
from voip24h.pbx.target import parse_ami_url


def replay_into_outbox(engine: Any) -> LiveOutbox:
    async def main() -> LiveOutbox:
        live, outbox = LiveCalls(matcher()), LiveOutbox(engine, flush_seconds=0.005)

        def on_event(message: Message) -> None:
            outbox.put(live.feed(message))

        writer = asyncio.create_task(outbox.run())
        async with AmiPeer(Transcript.load("queue_call")) as peer:
            link = PbxLink(
                parse_ami_url(peer.url), listeners=[on_event], backoff=Backoff(0.01, 0.05)
            )
            runner = asyncio.create_task(link.run())
            async with asyncio.timeout(10):
                while outbox.written < 5:
                    await asyncio.sleep(0.01)
            link.stop()
            await runner
        outbox.stop()
        await writer
        return outbox

    return asyncio.run(main())


def test_a_replayed_queue_call_is_in_the_outbox_in_order_scoped_like_records(engine):
    outbox = replay_into_outbox(engine)
    assert outbox.written == 5 and outbox.pending == 0 and outbox.dropped == 0
    with engine.connect() as conn:
        tenant = events_for_partner(conn, Scope(frozenset({"tenantA"})), 0, 100)
        other = events_for_partner(conn, Scope(frozenset({"tenantB"})), 0, 100)
        only_102 = events_for_partner(conn, Scope(extensions=parse_extensions("102")), 0, 100)
        ranged = events_for_partner(
            conn, Scope(frozenset({"tenantA"}), parse_extensions("100-101")), 0, 100
        )
    assert [(e["type"], e["data"]["user"], e["data"]["sequence"]) for e in tenant] == [
        ("call.ringing", "101", 1),
        ("call.ringing", "102", 1),
        ("call.answered", "101", 2),
        ("call.ended", "102", 2),
        ("call.ended", "101", 3),
    ]
    assert [e["sequence"] for e in tenant] == sorted(e["sequence"] for e in tenant)
    assert other == []
    assert [(e["type"], e["data"]["user"]) for e in only_102] == [
        ("call.ringing", "102"),
        ("call.ended", "102"),
    ]
    assert {e["data"]["user"] for e in ranged} == {"101"}
    first = tenant[0]
    assert first["data"] == {
        "callId": "1796592540.75",
        "user": "101",
        "phoneNumber": "+15551239999",
        "direction": "inbound",
        "occurredAt": "2026-12-06T21:29:00.365662Z",
        "sequence": 1,
    }
    assert first["occurredAt"] == "2026-12-06T21:29:00Z"
    assert tenant[3]["data"]["status"] == "answered_elsewhere"
    assert tenant[4]["data"]["status"] == "answered"


def test_events_wait_while_the_database_is_down_and_are_written_in_order_after(engine):
    def event(n: int) -> LiveEvent:
        return LiveEvent(
            type="call.ringing",
            call_id=f"1.{n}",
            user="101",
            phone_number="0987",
            direction="inbound",
            occurred_at=datetime(2026, 12, 7, tzinfo=UTC),
            sequence=1,
            tenant="acme",
        )

    async def main() -> LiveOutbox:
        outbox = LiveOutbox(engine, flush_seconds=0.001, retry_seconds=0.05)
        with engine.begin() as conn:  # the outbox's table is gone: every write fails
            conn.execute(text("ALTER TABLE events RENAME TO events_away"))
        writer = asyncio.create_task(outbox.run())
        try:
            outbox.put([event(1), event(2)])
            async with asyncio.timeout(10):
                while outbox.failures < 2:
                    await asyncio.sleep(0.01)
            outbox.put([event(3)])
            assert outbox.written == 0 and outbox.pending == 3
        finally:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE events_away RENAME TO events"))
        async with asyncio.timeout(10):
            while outbox.written < 3:
                await asyncio.sleep(0.01)
        outbox.stop()
        await writer
        return outbox

    asyncio.run(main())
    with engine.connect() as conn:
        got = events_for_partner(conn, Scope(), 0, 100)
    assert [e["data"]["callId"] for e in got] == ["1.1", "1.2", "1.3"]
