"""The partner's events from the outbox, in sequence order, for the live event stream.

Each event is read once per stream after the last sequence the stream sent, with the
partner's scope in the SQL itself (db/queries/events.py); the stream resumes from any
sequence a client gives back (``Last-Event-ID``).
"""

from __future__ import annotations

from typing import Any

from voip24h.db.drivers import Reader
from voip24h.db.queries import events as event_queries
from voip24h.domain.partners import Scope

BATCH = 500


class EventFeed:
    """Reads a partner's events after a sequence number through the async reader."""

    def __init__(self, reader: Reader):
        self._reader = reader

    async def after(self, scope: Scope, cursor: int, limit: int = BATCH) -> list[dict[str, Any]]:
        """Up to ``limit`` of the events in ``scope`` after sequence ``cursor``, oldest
        first; raises DatabaseUnavailable/DatabaseTimeout like every read."""
        statement = self._reader.prepare(
            ("events-after", scope), lambda: event_queries.select_events_after(scope)
        )
        rows = await self._reader.fetch(statement, {"cursor": cursor, "limit": limit})
        return [event_queries.event_document(row) for row in rows]
