"""Helpers several test modules share (a test module never imports another one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from tests.builders import REC
from voip24h.db.schema import audit_log, call_records, cdr

NO_LIMITS = ("rate_limit_per_second", "rate_limit_rows_per_minute", "auth_failures_per_minute")


def unlimited(settings: Any) -> dict[str, Any]:
    """Overrides turning off the per-partner rate limits where the server has them."""
    return {name: 0 for name in NO_LIMITS if hasattr(settings, name)}


def flush(client: Any) -> None:
    """Write the audit entries the app still holds in memory."""
    client.portal.call(client.app.state.voip24h.audit.flush)


def audit_rows(engine: Any) -> list[dict[str, Any]]:
    """Every audit entry, oldest first."""
    with engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings()
        ]


def voip24h(*args: Any) -> list[str]:
    """The argv that runs the CLI of the code under test in a child process."""
    return [sys.executable, "-m", "voip24h", *map(str, args)]


def environment() -> dict[str, str]:
    """This environment without VOIP24H_ settings, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP24H_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def contents(engine: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every cdr row (without its id) and every call record, in a stable order."""
    columns = [c for c in cdr.columns if c.name != "id"]
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).order_by(cdr.c.row_key)).all()
        records = conn.execute(
            select(call_records).order_by(call_records.c.callid, call_records.c.user_ext)
        ).all()
    return [tuple(r) for r in rows], [tuple(r) for r in records]


def count(engine: Any) -> int:
    """How many cdr rows are stored."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(cdr)) or 0)


# Recordings: a storage key, a file the seed's record names, and its bytes.
KEY = "k" * 40
NAME = REC
AUDIO = bytes(range(256)) * 40  # 10 KiB standing in for a WAV file


def downgrade(engine: Any, revision: str) -> None:
    """Take the schema back to ``revision`` (Alembic's downgrade, in one transaction)."""
    from alembic import command

    from voip24h.db import migrate

    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@contextmanager
def refusing_dst(engine: Any, value: str = "666") -> Iterator[None]:
    """While open, the database refuses any cdr row whose dst is ``value``: a refusal
    the row validator cannot foresee (a trigger on SQLite, a CHECK elsewhere)."""
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        add = (
            f"CREATE TRIGGER t_refuse_dst BEFORE INSERT ON cdr WHEN NEW.dst = '{value}' "
            f"BEGIN SELECT RAISE(ABORT, 'dst {value} is refused'); END"
        )
        drop = "DROP TRIGGER IF EXISTS t_refuse_dst"
    else:
        add = f"ALTER TABLE cdr ADD CONSTRAINT t_refuse_dst CHECK (dst <> '{value}')"
        drop = "ALTER TABLE cdr DROP CONSTRAINT t_refuse_dst"
    with engine.begin() as conn:
        conn.execute(text(add))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(drop))
