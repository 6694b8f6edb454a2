"""The webhook tables: endpoints, their delivery queue (``webhook_deliveries``) and every
attempt (``webhook_attempts``).

The deliverer queues an endpoint's events from the outbox with the partner's scope in
the statement itself, so an event outside the scope never reaches its queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from voip24h.db.queries.call_records import scope_clause
from voip24h.db.queries.events import COLUMNS as EVENT_COLUMNS
from voip24h.db.schema import events, partners
from voip24h.db.schema import webhook_attempts as a
from voip24h.db.schema import webhook_deliveries as d
from voip24h.db.schema import webhook_endpoints as w
from voip24h.domain.partners import Scope

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
_ENDPOINT = (
    w.c.id,
    w.c.partner_id,
    w.c.url,
    w.c.secret,
    w.c.previous_secret,
    w.c.previous_until,
    w.c.event_types,
    w.c.users,
    w.c.enabled,
    w.c.disabled_reason,
    w.c.failing_since,
    w.c.last_seq,
    w.c.created_at,
    partners.c.name.label("partner"),
    partners.c.accountcodes,
    partners.c.extensions,
)


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None, microsecond=0)


def newest_seq(conn: Connection) -> int:
    """The sequence of the newest event (0 when there is none)."""
    return int(conn.scalar(select(func.max(events.c.seq))) or 0)


def add_endpoint(conn: Connection, values: dict[str, Any]) -> None:
    """Insert an endpoint (``values`` by column name); it starts after the newest event."""
    conn.execute(insert(w).values(**values, last_seq=newest_seq(conn)))


def count_endpoints(conn: Connection, partner_id: int) -> int:
    """How many endpoints the partner has."""
    stmt = select(func.count()).select_from(w).where(w.c.partner_id == partner_id)
    return int(conn.scalar(stmt) or 0)


def _endpoints() -> Any:
    return select(*_ENDPOINT).join(partners, partners.c.id == w.c.partner_id)


def list_endpoints(conn: Connection, partner_id: int | None = None) -> list[dict[str, Any]]:
    """Endpoints (of one partner, or all) with their partner's name and scope, oldest first."""
    stmt = _endpoints().order_by(w.c.created_at, w.c.id)
    if partner_id is not None:
        stmt = stmt.where(w.c.partner_id == partner_id)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def get_endpoint(
    conn: Connection, endpoint_id: str, partner_id: int | None = None
) -> dict[str, Any] | None:
    """One endpoint, only if it is the partner's (when ``partner_id`` is given)."""
    stmt = _endpoints().where(w.c.id == endpoint_id)
    if partner_id is not None:
        stmt = stmt.where(w.c.partner_id == partner_id)
    row = conn.execute(stmt).mappings().first()
    return None if row is None else dict(row)


def deliverable_endpoints(conn: Connection) -> list[dict[str, Any]]:
    """Enabled endpoints of partners not revoked."""
    stmt = _endpoints().where(w.c.enabled.is_(True), partners.c.revoked_at.is_(None))
    return [dict(row) for row in conn.execute(stmt.order_by(w.c.id)).mappings()]


def any_deliverable(conn: Connection) -> bool:
    """Whether there is an enabled endpoint at all (a cheap read before taking the lease)."""
    return conn.scalar(select(w.c.id).where(w.c.enabled.is_(True)).limit(1)) is not None


def remove_endpoint(conn: Connection, endpoint_id: str, partner_id: int | None = None) -> bool:
    """Delete an endpoint, its queue and attempts; False when there was no such endpoint."""
    where = [w.c.id == endpoint_id]
    if partner_id is not None:
        where.append(w.c.partner_id == partner_id)
    if conn.scalar(select(w.c.id).where(*where)) is None:
        return False
    conn.execute(delete(a).where(a.c.endpoint_id == endpoint_id))
    conn.execute(delete(d).where(d.c.endpoint_id == endpoint_id))
    conn.execute(delete(w).where(*where))
    return True


def update_endpoint(conn: Connection, endpoint_id: str, **values: Any) -> None:
    """Set some columns of an endpoint (secret rotation, enabling, failure marks)."""
    conn.execute(update(w).where(w.c.id == endpoint_id).values(**values))


def queue_events(
    conn: Connection, endpoint: dict[str, Any], scope: Scope, now: datetime, limit: int = 1000
) -> int:
    """Queue the endpoint's next events after its ``last_seq``: in the partner's
    ``scope`` (in the statement), then its type and user filters. Moves ``last_seq``
    past every event read, in the same transaction. Returns how many were queued."""
    stmt = (
        select(events.c.seq, events.c.type, events.c.user_ext)
        .where(events.c.seq > endpoint["last_seq"], scope_clause(scope, events))
        .order_by(events.c.seq)
        .limit(limit)
    )
    found = conn.execute(stmt).all()
    if not found:
        return 0
    types = {t for t in endpoint["event_types"].split(",") if t}
    users = {u for u in endpoint["users"].split(",") if u}
    at = _naive(now)
    rows = [
        {
            "endpoint_id": endpoint["id"],
            "event_seq": row.seq,
            "attempts": 0,
            "next_attempt_at": at,
            "last_error": "",
            "state": PENDING,
            "updated_at": at,
        }
        for row in found
        if (not types or row.type in types) and (not users or row.user_ext in users)
    ]
    if rows:
        conn.execute(insert(d), rows)
    update_endpoint(conn, endpoint["id"], last_seq=found[-1].seq)
    endpoint["last_seq"] = found[-1].seq
    return len(rows)


def pending_head(conn: Connection, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
    """The endpoint's oldest pending deliveries in sequence order, with their events."""
    stmt = (
        select(
            d.c.id.label("delivery_id"),
            d.c.attempts,
            d.c.next_attempt_at,
            *EVENT_COLUMNS,
        )
        .join(events, events.c.seq == d.c.event_seq)
        .where(d.c.endpoint_id == endpoint_id, d.c.state == PENDING)
        .order_by(d.c.event_seq)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]


def record_attempt(
    conn: Connection,
    delivery: dict[str, Any],
    endpoint_id: str,
    *,
    now: datetime,
    status: int | None,
    error: str,
    latency_ms: float,
    state: str,
    next_at: datetime,
) -> None:
    """Note one attempt, and the delivery's new state, in the caller's transaction."""
    at = _naive(now)
    attempt = int(delivery["attempts"]) + 1
    conn.execute(
        insert(a).values(
            endpoint_id=endpoint_id,
            event_seq=delivery["seq"],
            event_id=delivery["id"],
            attempt=attempt,
            at=at,
            status=status,
            error=error[:255],
            latency_ms=latency_ms,
        )
    )
    conn.execute(
        update(d)
        .where(d.c.id == delivery["delivery_id"])
        .values(
            attempts=attempt,
            next_attempt_at=next_at.replace(tzinfo=None),
            last_status=status,
            last_error=error[:255],
            state=state,
            updated_at=at,
        )
    )


def fail_pending(conn: Connection, endpoint_id: str, reason: str, now: datetime) -> int:
    """Mark every pending delivery of a disabled endpoint failed; how many."""
    done = conn.execute(
        update(d)
        .where(d.c.endpoint_id == endpoint_id, d.c.state == PENDING)
        .values(state=FAILED, last_error=reason[:255], updated_at=_naive(now))
    )
    return done.rowcount or 0


def queue_depth(conn: Connection) -> int:
    """Deliveries still pending, over every endpoint."""
    stmt = select(func.count()).select_from(d).where(d.c.state == PENDING)
    return int(conn.scalar(stmt) or 0)


def event_seqs(
    conn: Connection,
    scope: Scope,
    *,
    event_id: str | None = None,
    after_seq: int | None = None,
    since: datetime | None = None,
    limit: int = 10_000,
) -> list[int]:
    """Sequences of the partner's events: one by id, those after a sequence, or those
    that occurred at or after a time; the scope is in the statement."""
    stmt = select(events.c.seq).where(scope_clause(scope, events))
    if event_id is not None:
        stmt = stmt.where(events.c.id == event_id)
    if after_seq is not None:
        stmt = stmt.where(events.c.seq > after_seq)
    if since is not None:
        stmt = stmt.where(events.c.occurred_at >= since.replace(tzinfo=None))
    return [int(seq) for seq in conn.scalars(stmt.order_by(events.c.seq).limit(limit))]


def requeue(conn: Connection, endpoint_id: str, seqs: Sequence[int], now: datetime) -> int:
    """Queue these events again for the endpoint (redelivery), due now; how many."""
    at = _naive(now)
    known: set[int] = set()
    for start in range(0, len(seqs), 500):
        chunk = list(seqs[start : start + 500])
        stmt = select(d.c.event_seq).where(d.c.endpoint_id == endpoint_id, d.c.event_seq.in_(chunk))
        known.update(int(seq) for seq in conn.scalars(stmt))
        conn.execute(
            update(d)
            .where(d.c.endpoint_id == endpoint_id, d.c.event_seq.in_(chunk))
            .values(state=PENDING, attempts=0, next_attempt_at=at, updated_at=at, last_error="")
        )
    fresh = [
        {
            "endpoint_id": endpoint_id,
            "event_seq": seq,
            "attempts": 0,
            "next_attempt_at": at,
            "last_error": "",
            "state": PENDING,
            "updated_at": at,
        }
        for seq in seqs
        if seq not in known
    ]
    if fresh:
        conn.execute(insert(d), fresh)
    return len(seqs)


def attempts(
    conn: Connection, endpoint_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest attempts (of one endpoint, or all), newest first."""
    stmt = select(a).order_by(a.c.id.desc()).limit(limit)
    if endpoint_id is not None:
        stmt = stmt.where(a.c.endpoint_id == endpoint_id)
    return [dict(row) for row in conn.execute(stmt).mappings()]


def delivery_states(conn: Connection, endpoint_id: str) -> dict[str, int]:
    """How many of the endpoint's deliveries are in each state."""
    stmt = select(d.c.state, func.count()).where(d.c.endpoint_id == endpoint_id).group_by(d.c.state)
    return {state: int(n) for state, n in conn.execute(stmt).all()}


def prune_before(conn: Connection, before: datetime) -> int:
    """Retention: delete events that occurred before ``before``, with their deliveries
    and attempts; how many events went."""
    stmt = select(func.max(events.c.seq)).where(events.c.occurred_at < before.replace(tzinfo=None))
    last = conn.scalar(stmt)
    if last is None:
        return 0
    conn.execute(delete(a).where(a.c.event_seq <= last))
    conn.execute(delete(d).where(d.c.event_seq <= last))
    done = conn.execute(delete(events).where(events.c.seq <= last))
    return done.rowcount or 0
