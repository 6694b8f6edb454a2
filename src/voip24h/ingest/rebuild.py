"""Giving rows stored before migration 0009 their callid, then their records.

Run by ``voip24h db upgrade`` (and ``db reindex``): rows whose callid is empty
get it in batches, each its own transaction, so a kill loses only the batch in
flight and the next run goes on from there. Rows with a linkedid take it; rows
with the uniqueid Asterisk logged take that; rows stored without one (whose
uniqueid voip24h made up, ``domain/cdr.synthetic_uniqueid``) get the callId
derived from their caller channel, joined across batches like an import's
(ingest/linking.py). The records are rebuilt afterwards by the reindex, which
the mapping version asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from voip24h.db.queries import cdr as cdr_queries
from voip24h.domain import conversations
from voip24h.domain.cdr import synthetic_uniqueid
from voip24h.ingest.linking import ChainLinker


def pending(engine: Engine) -> int:
    """How many rows have no callid yet."""
    with engine.connect() as conn:
        return cdr_queries.count_without_callid(conn)


def fill_callids(
    engine: Engine,
    zone: ZoneInfo,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 5000,
) -> int:
    """Give every row without a callid its conversation; how many rows were filled.

    ``progress(rows_done)`` is called after each committed batch.
    """
    linker = ChainLinker(zone)
    done = 0
    while True:
        with engine.begin() as conn:
            rows = cdr_queries.rows_without_callid(conn, batch_size)
            if not rows:
                return done
            callids: dict[int, str] = {}
            unnamed: list[dict[str, Any]] = []
            for row in rows:
                made_up = row["uniqueid"] == synthetic_uniqueid(
                    row["calldate"], row["row_key"], zone
                )
                row["callid"] = row["linkedid"] or ("" if made_up else row["uniqueid"])
                if row["callid"]:
                    callids[row["id"]] = row["callid"]
                else:
                    unnamed.append(row)
            chains = conversations.link(unnamed, zone)
            renames, _ = linker.join(conn, chains, indexed=True)
            for row in unnamed:
                callids[row["id"]] = renames.get(row["callid"], row["callid"])
            cdr_queries.set_callids(conn, callids)
            done += len(rows)
        if progress:
            progress(done)
