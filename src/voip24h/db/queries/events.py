"""The ``events`` outbox: record.created / record.updated events, written by ingestion
inside its own transaction, and the PBX link's live call.* events; read by partners
(getEvents, the event stream) and the deliverer.

Scope is part of every partner read, with the same clause call_records uses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Select, bindparam, delete, insert, select, update

from voip24h.db.queries.call_records import scope_clause
from voip24h.db.schema import events as t
from voip24h.db.schema import sequences
from voip24h.domain.partners import Scope

LIVE_EVENT_TYPES = ("call.ringing", "call.answered", "call.ended")
EVENT_TYPES = ("record.created", "record.updated", *LIVE_EVENT_TYPES)
_SEQUENCE = "events"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id(now_ms: int | None = None) -> str:
    """``evt_`` and a ULID: 48 bits of milliseconds then 80 random bits, base32 (26 chars),
    so ids sort roughly by time and never collide in practice."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = [_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5)]
    return "evt_" + "".join(chars)


def record_payload(record: Mapping[str, Any]) -> dict[str, Any]:
    """A call record (call_records' columns) in the seed shape plus the push fields."""
    return {
        "callId": record["callid"],
        "user": record["user_ext"],
        "phoneNumber": record["phone_number"],
        "callType": record["call_type"],
        "callStatus": record["call_status"],
        "callDate": record["call_date"],
        "duration": int(record["duration"]),
        "billsec": int(record["billsec"]),
        "direction": record["direction"],
        "did": record["did"],
        "linkedid": record["linkedid"],
        "hasRecording": bool(record["recordingfile"]),
    }


def _reserve(conn: Connection, count: int) -> int:
    """Take ``count`` sequence numbers; return the last. The UPDATE's row lock holds other
    writers until this transaction ends, so events commit in seq order."""
    done = conn.execute(
        update(sequences)
        .where(sequences.c.name == _SEQUENCE)
        .values(value=sequences.c.value + count)
    )
    if not done.rowcount:
        conn.execute(insert(sequences).values(name=_SEQUENCE, value=count))
    last = conn.scalar(select(sequences.c.value).where(sequences.c.name == _SEQUENCE))
    return int(last or 0)


def append_events(
    conn: Connection,
    records: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    now: datetime | None = None,
) -> int:
    """Append one event per ``(type, record)``, in order, inside the caller's transaction;
    ``record`` has call_records' columns (a CallRecord as a dict). A live ``call.*``
    event's ``record`` holds the scope columns (accountcode, user_ext, user_num, callid),
    its own ``occurred_at`` and its ready ``payload`` instead. Returns how many."""
    items = list(records)
    if not items:
        return 0
    for kind, _ in items:
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r}")
    at = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    first = _reserve(conn, len(items)) - len(items) + 1
    now_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
    rows = [
        {
            "seq": first + n,
            "id": new_event_id(now_ms),
            "type": kind,
            "occurred_at": _naive(record.get("occurred_at")) or at,
            "accountcode": record["accountcode"],
            "user_ext": record["user_ext"],
            "user_num": record.get("user_num"),
            "callid": record["callid"],
            "payload": orjson.dumps(
                record["payload"] if kind in LIVE_EVENT_TYPES else record_payload(record)
            ).decode(),
        }
        for n, (kind, record) in enumerate(items)
    ]
    conn.execute(insert(t), rows)
    return len(rows)


def _naive(moment: datetime | None) -> datetime | None:
    """A UTC moment as the table stores it: naive, whole seconds (MariaDB's DATETIME)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _document(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "occurredAt": row.occurred_at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "sequence": int(row.seq),
        "data": orjson.loads(row.payload),
    }


_COLUMNS = (t.c.seq, t.c.id, t.c.type, t.c.occurred_at, t.c.payload)


def events_for_partner(
    conn: Connection, scope: Scope, cursor: int, limit: int
) -> list[dict[str, Any]]:
    """The partner's events after sequence ``cursor``, oldest first, at most ``limit``;
    events of records outside ``scope`` are filtered in the statement itself."""
    stmt = (
        select(*_COLUMNS)
        .where(t.c.seq > cursor, scope_clause(scope, t))
        .order_by(t.c.seq)
        .limit(limit)
    )
    return [_document(row) for row in conn.execute(stmt)]


def event_by_id(conn: Connection, scope: Scope, event_id: str) -> dict[str, Any] | None:
    """One event by id if it is in ``scope``, else None."""
    stmt = select(*_COLUMNS).where(t.c.id == event_id, scope_clause(scope, t))
    row = conn.execute(stmt).first()
    return None if row is None else _document(row)


def prune_events(conn: Connection, before: datetime) -> int:
    """Delete events that occurred before ``before`` (retention); return how many."""
    done = conn.execute(delete(t).where(t.c.occurred_at < before.replace(tzinfo=None)))
    return done.rowcount or 0


def select_events_after(scope: Scope) -> Select:
    """The partner's events after bind parameter ``cursor``, oldest first, at most
    ``limit`` (for the async readers of the event stream); scope in the statement."""
    return (
        select(*_COLUMNS)
        .where(t.c.seq > bindparam("cursor", required=False), scope_clause(scope, t))
        .order_by(t.c.seq)
        .limit(bindparam("limit", required=False))
    )
