"""The ``events`` outbox: record.created / record.updated events, written by ingestion
inside its own transaction, and the PBX link's live call.* events; read by partners
(getEvents, the event stream) and the deliverer.

Scope is part of every partner read, with the same clause call_records uses.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, Select, bindparam, delete, insert, select, update

from voip24h.db import bulk
from voip24h.db.queries.call_records import scope_clause
from voip24h.db.schema import events as t
from voip24h.db.schema import sequences
from voip24h.domain.mapping import CallRecord, as_datetime
from voip24h.domain.partners import Scope

LIVE_EVENT_TYPES = ("call.ringing", "call.answered", "call.ended")
EVENT_TYPES = ("record.created", "record.updated", *LIVE_EVENT_TYPES)
_SEQUENCE = "events"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def new_event_ids(count: int, now_ms: int | None = None) -> list[str]:
    """``count`` ids: ``evt_`` and a ULID, 48 bits of milliseconds (10 base32 chars) then
    80 random bits (16 chars), so ids sort roughly by time and never collide in practice.
    The random part is one base32 block of 10 bytes: cheap enough for a bulk import."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    head = "evt_" + "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5))
    noise = base64.b32encode(os.urandom(10 * count)).translate(_TO_CROCKFORD).decode()
    return [head + noise[16 * n : 16 * n + 16] for n in range(count)]


def new_event_id(now_ms: int | None = None) -> str:
    """One id, as ``new_event_ids`` makes them."""
    return new_event_ids(1, now_ms)[0]


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


def values_payload(values: Sequence[Any]) -> str:
    """``record_payload`` as JSON text, of a record given as ``record_values`` (a
    CallRecord's fields in order): what the import's parsing workers compute."""
    at = _field_positions()
    return orjson.dumps(
        {
            "callId": values[at["callid"]],
            "user": values[at["user"]],
            "phoneNumber": values[at["phone_number"]],
            "callType": values[at["call_type"]],
            "callStatus": values[at["call_status"]],
            "callDate": values[at["call_date"]],
            "duration": int(values[at["duration"]]),
            "billsec": int(values[at["billsec"]]),
            "direction": values[at["direction"]],
            "did": values[at["did"]],
            "linkedid": values[at["linkedid"]],
            "hasRecording": bool(values[at["recordingfile"]]),
        }
    ).decode()


@cache
def _field_positions() -> dict[str, int]:
    return {name: n for n, name in enumerate(CallRecord.__dataclass_fields__)}


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
    ``record`` has call_records' columns (a CallRecord as a dict), or its accountcode,
    user_ext, user_num, callid and a ``payload`` made by ``values_payload``. A live
    ``call.*`` event's ``record`` holds the scope columns, its own ``occurred_at`` and its
    payload (a dict). Returns how many."""
    items = list(records)
    if not items:
        return 0
    for kind, _ in items:
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r}")
    at = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    first = _reserve(conn, len(items)) - len(items) + 1
    now_ms = int(at.replace(tzinfo=UTC).timestamp() * 1000)
    ids = new_event_ids(len(items), now_ms)
    names = bulk.column_names(t)
    sample = {"seq": 0, "id": "", "type": "", "occurred_at": at, "accountcode": "",
              "user_ext": "", "user_num": None, "callid": "", "payload": ""}  # fmt: skip
    # Every column but occurred_at is text or a number, which no backend converts: the
    # rows go to the driver as tuples, with occurred_at encoded once for the batch.
    stored_at = bulk.encode(conn.dialect, t, [sample])[0][names.index("occurred_at")]
    assert names == list(sample), names
    at_column = names.index("occurred_at")

    def _stored(moment: datetime | None) -> Any:
        own = _naive(moment)
        if own is None:
            return stored_at
        return bulk.encode(conn.dialect, t, [{**sample, "occurred_at": own}])[0][at_column]

    rows = [
        (
            first + n,
            ids[n],
            kind,
            _stored(record.get("occurred_at")) if kind in LIVE_EVENT_TYPES else stored_at,
            record["accountcode"],
            record["user_ext"],
            record.get("user_num"),
            record["callid"],
            _payload_text(kind, record),
        )
        for n, (kind, record) in enumerate(items)
    ]
    bulk.insert_encoded(conn, t, rows)
    return len(rows)


def _payload_text(kind: str, record: Mapping[str, Any]) -> str:
    """The payload column of one event: JSON text (made here unless the caller did)."""
    ready = record.get("payload")
    if isinstance(ready, str) and ready:
        return ready
    if kind in LIVE_EVENT_TYPES:
        return orjson.dumps(ready).decode()
    return orjson.dumps(record_payload(record)).decode()


def _naive(moment: datetime | None) -> datetime | None:
    """A UTC moment as the table stores it: naive, whole seconds (MariaDB's DATETIME)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


COLUMNS = (t.c.seq, t.c.id, t.c.type, t.c.occurred_at, t.c.payload)
EVENT_FIELDS = tuple(column.name for column in COLUMNS)  # the order event_document reads


def event_document(row: Sequence[Any]) -> dict[str, Any]:
    """An events row (seq, id, type, occurred_at, payload: ``COLUMNS``' order) as partners
    receive it (the getEvents shape). occurred_at is naive UTC, a datetime or the text an
    async driver may give; every reader of events (the engine's, the stream's async
    readers, the deliverer) renders through this one function."""
    seq, event_id, kind, occurred_at, payload = row
    moment = as_datetime(occurred_at).replace(tzinfo=UTC)
    return {
        "id": event_id,
        "type": kind,
        "occurredAt": moment.isoformat().replace("+00:00", "Z"),
        "sequence": int(seq),
        "data": orjson.loads(payload),
    }


def events_for_partner(
    conn: Connection, scope: Scope, cursor: int, limit: int
) -> list[dict[str, Any]]:
    """The partner's events after sequence ``cursor``, oldest first, at most ``limit``;
    events of records outside ``scope`` are filtered in the statement itself."""
    stmt = (
        select(*COLUMNS)
        .where(t.c.seq > cursor, scope_clause(scope, t))
        .order_by(t.c.seq)
        .limit(limit)
    )
    return [event_document(row) for row in conn.execute(stmt)]


def event_by_id(conn: Connection, scope: Scope, event_id: str) -> dict[str, Any] | None:
    """One event by id if it is in ``scope``, else None."""
    stmt = select(*COLUMNS).where(t.c.id == event_id, scope_clause(scope, t))
    row = conn.execute(stmt).first()
    return None if row is None else event_document(row)


def prune_events(conn: Connection, before: datetime) -> int:
    """Delete events that occurred before ``before`` (retention); return how many."""
    done = conn.execute(delete(t).where(t.c.occurred_at < before.replace(tzinfo=None)))
    return done.rowcount or 0


def select_events_after(scope: Scope) -> Select:
    """The partner's events after bind parameter ``cursor``, oldest first, at most
    ``limit`` (for the async readers of the event stream); scope in the statement."""
    return (
        select(*COLUMNS)
        .where(t.c.seq > bindparam("cursor", required=False), scope_clause(scope, t))
        .order_by(t.c.seq)
        .limit(bindparam("limit", required=False))
    )
