"""The deliverer against a real receiver on 127.0.0.1, on every backend: order, retries,
Retry-After, 410, auto-disable with an audit entry, filters, tenants kept apart, the lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.builders import calls
from tests.webhook_receiver import Receiver
from voip24h.db.queries.events import events_for_partner
from voip24h.db.schema import audit_log, webhook_attempts, webhook_deliveries, webhook_endpoints
from voip24h.domain.partners import Scope
from voip24h.service.answers import scope_from_row
from voip24h.service.webhooks import sender
from voip24h.service.webhooks.deliverer import Deliverer
from voip24h.service.webhooks.endpoints import Webhooks

FAST = {
    "webhook_allow_cidrs": "127.0.0.1",
    "webhook_retry_seconds": ",".join(["0"] + ["1"] * 12),
    "webhook_poll_seconds": 0.05,
}


@pytest.fixture
def fast(settings: Any) -> Any:
    return settings.replace(**FAST)


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    started: list[Receiver] = []

    def start() -> Receiver:
        started.append(Receiver().start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def add_endpoint(settings: Any, engine: Any, partner: str, url: str, **filters: Any) -> dict:
    from voip24h.db.queries.partners import find

    with engine.connect() as conn:
        row = find(conn, partner)
    assert row is not None
    scope = scope_from_row(row["accountcodes"], row["extensions"])
    service = Webhooks(settings, engine)
    return asyncio.run(service.add(row["id"], scope, url, **filters))


def drive(deliverer: Deliverer, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Run rounds until ``done()`` (or fail after ``timeout`` seconds)."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with sender.new_client() as client:
            while not done():
                assert loop.time() < deadline, "the deliverer did not finish in time"
                if not await deliverer.round(client):
                    await asyncio.sleep(0.05)

    asyncio.run(run())


def visible(engine: Any, scope: Scope | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return events_for_partner(conn, scope or Scope(), 0, 10_000)


def test_every_event_arrives_signed_in_sequence_order_and_each_attempt_is_recorded(
    fast, engine, add_partner, load, receivers
):
    receiver = receivers()
    add_partner("crm")
    endpoint = add_endpoint(fast, engine, "crm", receiver.url)
    receiver.secrets = [endpoint["secret"]]
    load(*calls())
    expected = [e["id"] for e in visible(engine)]
    deliverer = Deliverer(fast.replace(webhook_max_in_flight=1), engine)
    drive(deliverer, lambda: len(receiver.delivered()) >= len(expected))
    got = receiver.delivered()
    assert [s["id"] for s in got] == expected
    assert all(s["verified"] for s in got)
    assert [s["body"]["id"] for s in got] == expected
    assert got[0]["body"]["data"]["callId"] and got[0]["body"]["sequence"] >= 1
    with engine.connect() as conn:
        tried = conn.execute(select(webhook_attempts.c.status)).scalars().all()
        states = conn.execute(select(webhook_deliveries.c.state)).scalars().all()
    assert tried == [200] * len(expected) and set(states) == {"delivered"}
    sample = deliverer.metrics.registry.get_sample_value
    assert sample("voip24h_webhook_queue_depth") == 0
    assert sample("voip24h_webhook_delivered_total") == len(expected)
    assert sample("voip24h_webhook_delivery_seconds_count") == len(expected)


def test_receiver_down_then_back_gets_every_event_in_order_without_duplicates(
    fast, engine, add_partner, load, receivers
):
    receiver = receivers()
    add_partner("crm")
    endpoint = add_endpoint(fast, engine, "crm", receiver.url)
    receiver.secrets = [endpoint["secret"]]
    receiver.stop()  # down
    load(*calls())
    expected = [e["id"] for e in visible(engine)]
    deliverer = Deliverer(fast.replace(webhook_max_in_flight=1), engine)

    def failed_twice() -> bool:
        with engine.connect() as conn:
            rows = conn.execute(select(webhook_attempts.c.status)).scalars().all()
        return len(rows) >= 2 and all(status is None for status in rows)

    drive(deliverer, failed_twice)
    receiver.start()  # back, on the same port
    drive(deliverer, lambda: len(receiver.delivered()) >= len(expected))
    ids = [s["id"] for s in receiver.delivered()]
    assert ids == expected and len(set(ids)) == len(ids)
    with engine.connect() as conn:
        errors = conn.execute(select(webhook_attempts.c.error)).scalars().all()
    assert any(errors)  # the failed attempts are on record too


def test_410_disables_the_endpoint_with_an_audit_entry(fast, engine, add_partner, load, receivers):
    receiver = receivers()
    receiver.status = 410
    add_partner("crm")
    endpoint = add_endpoint(fast, engine, "crm", receiver.url)
    load(*calls())
    deliverer = Deliverer(fast, engine)

    def disabled() -> bool:
        with engine.connect() as conn:
            return conn.scalar(select(webhook_endpoints.c.enabled)) is False

    drive(deliverer, disabled)
    tried = len(receiver.seen)
    with engine.connect() as conn:
        reason = conn.scalar(select(webhook_endpoints.c.disabled_reason))
        audit = conn.execute(select(audit_log)).mappings().all()
        pending = conn.execute(
            select(webhook_deliveries).where(webhook_deliveries.c.state == "pending")
        ).all()
    assert "410" in reason and not pending
    assert [(a["request_type"], a["error_code"], a["partner"]) for a in audit] == [
        ("webhookDisabled", "webhook_disabled", "crm")
    ]
    assert endpoint["id"] in audit[0]["params"]
    asyncio.run(_rounds(deliverer, 3))
    assert len(receiver.seen) == tried  # nothing more goes to a disabled endpoint


async def _rounds(deliverer: Deliverer, n: int) -> None:
    async with sender.new_client() as client:
        for _ in range(n):
            await deliverer.round(client)


def test_429_retry_after_is_honoured(fast, engine, add_partner, load, receivers):
    receiver = receivers()
    receiver.replies = [(429, {"Retry-After": "120"})]
    add_partner("crm")
    add_endpoint(fast, engine, "crm", receiver.url)
    load(*calls()[:1])
    deliverer = Deliverer(fast.replace(webhook_max_in_flight=1), engine)
    before = datetime.now(UTC).replace(tzinfo=None)  # the tables hold naive UTC
    asyncio.run(_rounds(deliverer, 3))
    assert [s["status"] for s in receiver.seen] == [429]  # not tried again within 120 s
    with engine.connect() as conn:
        row = conn.execute(select(webhook_deliveries)).mappings().one()
    assert row["state"] == "pending" and row["attempts"] == 1 and row["last_status"] == 429
    assert row["next_attempt_at"] >= before + timedelta(seconds=118)


def test_an_endpoint_failing_for_n_days_is_disabled(fast, engine, add_partner, load, receivers):
    receiver = receivers()
    receiver.status = 500
    add_partner("crm")
    add_endpoint(fast, engine, "crm", receiver.url)
    load(*calls()[:1])
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=6)
    with engine.begin() as conn:
        conn.execute(update(webhook_endpoints).values(failing_since=long_ago))
    asyncio.run(_rounds(Deliverer(fast, engine), 2))
    with engine.connect() as conn:
        row = conn.execute(select(webhook_endpoints)).mappings().one()
        audit = conn.execute(select(audit_log.c.request_type)).scalars().all()
    assert row["enabled"] is False and "5 days" in row["disabled_reason"]
    assert audit == ["webhookDisabled"]


def test_partner_b_never_receives_an_event_of_a(fast, engine, add_partner, load, receivers):
    for_a, for_b = receivers(), receivers()
    add_partner("a", accountcodes=("acme",))
    add_partner("b", accountcodes=("globex",))
    add_endpoint(fast, engine, "a", for_a.url)
    add_endpoint(fast, engine, "b", for_b.url)
    load(*calls())
    of_a = visible(engine, scope_from_row("acme", ""))
    of_b = visible(engine, scope_from_row("globex", ""))
    assert of_a and of_b
    drive(
        Deliverer(fast, engine),
        lambda: len(for_a.delivered()) >= len(of_a) and len(for_b.delivered()) >= len(of_b),
    )
    assert sorted(s["id"] for s in for_a.delivered()) == sorted(e["id"] for e in of_a)
    assert sorted(s["id"] for s in for_b.delivered()) == sorted(e["id"] for e in of_b)
    assert not {s["id"] for s in for_a.seen} & {s["id"] for s in for_b.seen}


def test_type_and_user_filters(fast, engine, add_partner, load, receivers):
    receiver = receivers()
    add_partner("crm")
    add_endpoint(fast, engine, "crm", receiver.url, users=["137"])
    load(*calls())
    wanted = [e["id"] for e in visible(engine) if e["data"]["user"] == "137"]
    assert wanted and len(wanted) < len(visible(engine))
    deliverer = Deliverer(fast, engine)
    drive(deliverer, lambda: len(receiver.delivered()) >= len(wanted))
    asyncio.run(_rounds(deliverer, 2))
    assert sorted(s["id"] for s in receiver.delivered()) == sorted(wanted)


def test_one_holder_of_the_lease_delivers(fast, engine, add_partner, load, receivers):
    receiver = receivers()
    add_partner("crm")
    add_endpoint(fast, engine, "crm", receiver.url)
    load(*calls())
    first, second = Deliverer(fast, engine), Deliverer(fast, engine)
    expected = len(visible(engine))

    async def both() -> None:
        async with sender.new_client() as client:
            for _ in range(20):
                await asyncio.gather(first.round(client), second.round(client))
                if len(receiver.delivered()) >= expected:
                    break

    asyncio.run(both())
    assert first.leader != second.leader
    ids = [s["id"] for s in receiver.delivered()]
    assert len(ids) == expected == len(set(ids))


def test_retention_prunes_old_events_even_without_an_endpoint(fast, engine):
    from voip24h.db.queries.events import append_events

    long_ago = datetime.now(UTC) - timedelta(days=40)
    record = {"callid": "1.1", "user_ext": "101", "user_num": 101, "accountcode": "acme",
              "call_date": "2026-01-01 00:00:00", "phone_number": "0900", "call_type": "EXTERNAL",
              "call_status": "ANSWERED", "direction": "OUTBOUND", "duration": 1, "billsec": 1,
              "did": "", "linkedid": "1.1", "recordingfile": ""}  # fmt: skip
    with engine.begin() as conn:
        append_events(conn, [("record.created", record)], now=long_ago)
        append_events(conn, [("record.updated", record)])
    asyncio.run(_rounds(Deliverer(fast, engine), 1))
    assert [e["type"] for e in visible(engine)] == ["record.updated"]


def test_the_deliverer_refuses_a_forbidden_address_on_every_attempt(
    fast, engine, add_partner, load, receivers
):
    receiver = receivers()
    add_partner("crm")
    add_endpoint(fast, engine, "crm", receiver.url)  # allowed when it was added
    load(*calls()[:1])
    strict = Deliverer(fast.replace(webhook_allow_cidrs=""), engine)  # the operator's list changed
    asyncio.run(_rounds(strict, 2))
    assert receiver.seen == []
    with engine.connect() as conn:
        tried = conn.execute(select(webhook_attempts.c.status, webhook_attempts.c.error)).all()
    assert tried and all(
        status is None and "resolves to 127.0.0.1" in error for status, error in tried
    )


def test_live_call_events_reach_an_endpoint_that_asks_for_them(
    fast, engine, add_partner, load, receivers
):
    from voip24h.db.queries.events import append_events

    receiver = receivers()
    add_partner("crm")
    kinds = ["call.ringing", "call.ended"]
    receiver.secrets = [
        add_endpoint(fast, engine, "crm", receiver.url, event_types=kinds)["secret"]
    ]
    load(*calls())  # record events: not asked for
    live = {"accountcode": "acme", "user_ext": "137", "user_num": 137, "callid": "1.1"}
    with engine.begin() as conn:
        append_events(
            conn,
            [
                (kind, {**live, "occurred_at": datetime.now(UTC),
                        "payload": {"callId": "1.1", "user": "137", "type": kind}})
                for kind in ("call.ringing", "call.answered", "call.ended")
            ],
        )  # fmt: skip
    deliverer = Deliverer(fast.replace(webhook_max_in_flight=1), engine)  # in order
    drive(deliverer, lambda: len(receiver.delivered()) >= 2)
    asyncio.run(_rounds(deliverer, 2))
    got = [(s["body"]["type"], s["verified"]) for s in receiver.delivered()]
    assert got == [("call.ringing", True), ("call.ended", True)]
