"""The ``partners`` and ``partner_secrets`` tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from voip24h.db.schema import partner_secrets as s
from voip24h.db.schema import partners as p


class PartnerExists(ValueError):
    """A partner with that name already exists."""


class SecretExists(ValueError):
    """That secret is already held by a partner."""


def add_partner(
    conn: Connection, name: str, accountcodes: str, extensions: str, now: datetime
) -> int:
    if find(conn, name) is not None:
        raise PartnerExists(name)
    result = conn.execute(
        insert(p).values(
            name=name, accountcodes=accountcodes, extensions=extensions, created_at=now
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def add_secret(
    conn: Connection, partner_id: int, secret_hash: str, prefix: str, now: datetime
) -> None:
    if conn.scalar(select(s.c.id).where(s.c.secret_hash == secret_hash)) is not None:
        raise SecretExists(prefix)
    try:
        conn.execute(
            insert(s).values(
                partner_id=partner_id, secret_hash=secret_hash, prefix=prefix, created_at=now
            )
        )
    except IntegrityError as exc:
        raise SecretExists(prefix) from exc


def find(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(p).where(p.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_all(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Partners with how many of their secrets are usable now."""
    live = and_(
        s.c.partner_id == p.c.id,
        s.c.revoked_at.is_(None),
        or_(s.c.expires_at.is_(None), s.c.expires_at > now),
    )
    active = select(func.count()).where(live).scalar_subquery()
    rows = conn.execute(select(p, active.label("active_secrets")).order_by(p.c.name)).mappings()
    return [dict(row) for row in rows]


def secrets_of(conn: Connection, partner_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(s.c.prefix, s.c.created_at, s.c.expires_at, s.c.revoked_at)
        .where(s.c.partner_id == partner_id)
        .order_by(s.c.created_at, s.c.id)
    )
    return [dict(row) for row in rows.mappings()]


def expire_active_secrets(conn: Connection, partner_id: int, at: datetime) -> int:
    """Make every live secret of a partner stop working at ``at`` (rotation overlap)."""
    result = conn.execute(
        update(s)
        .where(
            s.c.partner_id == partner_id,
            s.c.revoked_at.is_(None),
            or_(s.c.expires_at.is_(None), s.c.expires_at > at),
        )
        .values(expires_at=at)
    )
    return int(result.rowcount or 0)


def revoke(conn: Connection, partner_id: int, now: datetime) -> None:
    """Revoke a partner and every secret it holds, at once."""
    conn.execute(update(p).where(p.c.id == partner_id).values(revoked_at=now))
    conn.execute(
        update(s)
        .where(s.c.partner_id == partner_id, s.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def select_by_secret_hash() -> Select:
    """Partner and secret state for bind parameter ``secret_hash`` (the hot auth lookup)."""
    return (
        select(
            p.c.id,
            p.c.name,
            p.c.accountcodes,
            p.c.extensions,
            p.c.revoked_at,
            s.c.expires_at,
            s.c.revoked_at.label("secret_revoked_at"),
            s.c.secret_hash,
            p.c.rate_per_second,
            p.c.rows_per_minute,
        )
        .join(s, s.c.partner_id == p.c.id)
        .where(s.c.secret_hash == bindparam("secret_hash"))
    )


def set_limits(conn: Connection, partner_id: int, values: dict[str, Any]) -> None:
    """Set per-partner rate limits (``rate_per_second``, ``rows_per_minute``; None = default)."""
    conn.execute(update(p).where(p.c.id == partner_id).values(**values))
