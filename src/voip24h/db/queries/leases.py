"""The ``leases`` table: which process holds a singleton job (the deliverer), until when."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from voip24h.db.schema import leases as t


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; False while another
    holder's lease has not expired. Each call is its own transaction, so two processes
    racing for a free lease cannot both win (the primary key decides)."""
    now = now.replace(tzinfo=None)
    until = now + ttl
    with engine.begin() as conn:
        taken = conn.execute(
            update(t)
            .where(t.c.name == name, or_(t.c.holder == holder, t.c.expires_at <= now))
            .values(holder=holder, expires_at=until)
        )
        if taken.rowcount:
            return True
    try:
        with engine.begin() as conn:
            conn.execute(insert(t).values(name=name, holder=holder, expires_at=until))
    except IntegrityError:
        # Held by another, or taken a moment ago; or ours: MariaDB counts changed rows, not
        # matched ones, so a renewal to the same (whole) second updated "nothing".
        with engine.connect() as conn:
            return conn.scalar(select(t.c.holder).where(t.c.name == name)) == holder
    return True


def release(engine: Engine, name: str, holder: str) -> None:
    """Give lease ``name`` up if ``holder`` has it (on a clean shutdown)."""
    with engine.begin() as conn:
        conn.execute(delete(t).where(t.c.name == name, t.c.holder == holder))
