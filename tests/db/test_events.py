"""The events outbox: appended in the writer's transaction, read back per partner in
sequence order, only the partner's scope, resumable from a cursor, pruned by age."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from voip24h.db.queries.events import append_events, event_by_id, events_for_partner, prune_events
from voip24h.domain.partners import Scope, parse_extensions

T0 = datetime(2026, 12, 1, 8, 0, 0)


def record(callid: str, user: str, accountcode: str = "acme", **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "callid": callid,
        "user_ext": user,
        "user_num": int(user) if user.isdigit() else None,
        "accountcode": accountcode,
        "call_ts": 1_764_576_000,
        "call_date": "2026-12-01 15:00:00",
        "phone_number": "0987654321",
        "call_type": "EXTERNAL",
        "call_status": "ANSWERED",
        "direction": "OUTBOUND",
        "duration": 42,
        "billsec": 30,
        "did": "",
        "linkedid": callid,
        "recordingfile": "out-101.wav",
    }
    values.update(changes)
    return values


def seed(engine: Any) -> None:
    with engine.begin() as conn:
        append_events(
            conn,
            [
                ("record.created", record("1.1", "101")),
                ("record.created", record("2.1", "205", accountcode="other")),
                ("record.created", record("3.1", "150")),
            ],
            now=T0,
        )
    with engine.begin() as conn:
        append_events(conn, [("record.updated", record("1.1", "101", call_status="BUSY"))], now=T0)


def test_a_partner_reads_every_event_in_sequence_order_in_the_record_shape(engine):
    seed(engine)
    with engine.connect() as conn:
        got = events_for_partner(conn, Scope(), 0, 100)
    assert [(e["sequence"], e["type"], e["data"]["callId"]) for e in got] == [
        (1, "record.created", "1.1"),
        (2, "record.created", "2.1"),
        (3, "record.created", "3.1"),
        (4, "record.updated", "1.1"),
    ]
    first = got[0]
    assert first["id"].startswith("evt_") and len(first["id"]) == 30
    assert first["occurredAt"] == "2026-12-01T08:00:00Z"
    assert first["data"] == {
        "callId": "1.1",
        "user": "101",
        "phoneNumber": "0987654321",
        "callType": "EXTERNAL",
        "callStatus": "ANSWERED",
        "callDate": "2026-12-01 15:00:00",
        "duration": 42,
        "billsec": 30,
        "direction": "OUTBOUND",
        "did": "",
        "linkedid": "1.1",
        "hasRecording": True,
    }
    assert got[3]["data"]["callStatus"] == "BUSY"
    assert len({e["id"] for e in got}) == 4


def test_scope_filters_events_by_tenant_and_extension_range(engine):
    seed(engine)
    tenant = Scope(frozenset({"acme"}))
    ranged = Scope(frozenset({"acme"}), parse_extensions("100-149"))
    with engine.connect() as conn:
        assert [e["sequence"] for e in events_for_partner(conn, tenant, 0, 100)] == [1, 3, 4]
        assert [e["sequence"] for e in events_for_partner(conn, ranged, 0, 100)] == [1, 4]
        other_id = events_for_partner(conn, Scope(), 1, 1)[0]["id"]
        assert event_by_id(conn, tenant, other_id) is None
        assert event_by_id(conn, Scope(), other_id) is not None


def test_a_cursor_resumes_after_the_last_event_seen(engine):
    seed(engine)
    with engine.connect() as conn:
        page = events_for_partner(conn, Scope(), 0, 2)
        rest = events_for_partner(conn, Scope(), page[-1]["sequence"], 2)
        assert [e["sequence"] for e in page + rest] == [1, 2, 3, 4]
        assert events_for_partner(conn, Scope(), 4, 2) == []


def test_an_aborted_transaction_leaves_no_events_and_no_gap(engine):
    seed(engine)
    try:
        with engine.begin() as conn:
            append_events(conn, [("record.created", record("9.1", "101"))], now=T0)
            raise RuntimeError("ingestion failed")
    except RuntimeError:
        pass
    with engine.begin() as conn:
        append_events(conn, [("record.created", record("10.1", "101"))], now=T0)
    with engine.connect() as conn:
        got = events_for_partner(conn, Scope(), 4, 10)
    assert [(e["sequence"], e["data"]["callId"]) for e in got] == [(5, "10.1")]


def test_retention_prunes_events_older_than_the_cutoff(engine):
    seed(engine)
    with engine.begin() as conn:
        append_events(conn, [("record.created", record("5.1", "101"))], now=T0 + timedelta(days=31))
    with engine.begin() as conn:
        assert prune_events(conn, T0 + timedelta(days=1)) == 4
    with engine.connect() as conn:
        assert [e["sequence"] for e in events_for_partner(conn, Scope(), 0, 10)] == [5]
