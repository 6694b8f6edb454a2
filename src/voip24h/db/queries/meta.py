"""The ``voip24h_meta`` table: facts about the database itself (how records were built)."""

from __future__ import annotations

from sqlalchemy import Connection, Select, delete, insert, select

from voip24h.db.schema import meta


def get(conn: Connection, key: str) -> str | None:
    return conn.scalar(select(meta.c.value).where(meta.c.key == key))


def put(conn: Connection, key: str, value: str) -> None:
    conn.execute(delete(meta).where(meta.c.key == key))
    conn.execute(insert(meta).values(key=key, value=value))


def select_value(key: str) -> Select:
    """The value of ``key``, for the request path's reader."""
    return select(meta.c.value).where(meta.c.key == key)


def add(conn: Connection, key: str, value: str) -> None:
    """Insert ``key``; raises IntegrityError when another process stored it first."""
    conn.execute(insert(meta).values(key=key, value=value))
