"""Joining conversations derived from a caller channel across batches.

A batch derives the callIds of its rows that name no conversation
(domain/conversations.py) from those rows alone. A conversation can straddle
batches, files or import orders, so before a batch is written its chains are
matched against the chains already stored for the same channels: chains that
touch become one, named by the earliest first start, and stored rows are moved
to it. The answer is then the same whatever the order rows arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from voip24h.db.queries import cdr as cdr_queries
from voip24h.domain.conversations import GAP, Chain, merge

# How far back a stored row of a conversation may start before a new row of it: the
# longest call this looks through (a longer one is split in two conversations).
REACH = timedelta(hours=12)
_CARRIED = 50_000  # chains remembered between batches while indexes are deferred


class ChainLinker:
    """Matches each batch's derived chains with stored ones (see the module doc)."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        # Last chain per channel of the batches this process wrote: while an initial
        # load has ix_cdr_calldate away, what the table holds came through here.
        self.carried: dict[str, Chain] = {}

    def link(
        self,
        conn: Connection,
        chains: Sequence[Chain],
        rows: list[tuple[Any, ...]],
        *,
        indexed: bool,
    ) -> tuple[list[tuple[Any, ...]], set[str]]:
        """The batch's insert tuples with callids moved to the conversations they join, and
        the callids whose records must be rebuilt from the table once they are written."""
        renames, rebuild = self.join(conn, chains, indexed=indexed)
        if renames:
            at = cdr_queries.CALLID_AT
            rows = [
                row if row[at] not in renames else (*row[:at], renames[row[at]], *row[at + 1 :])
                for row in rows
            ]
        return rows, rebuild

    def join(
        self, conn: Connection, chains: Sequence[Chain], *, indexed: bool
    ) -> tuple[dict[str, str], set[str]]:
        """Join ``chains`` (a batch's, not stored yet) to the stored chains they touch:
        stored rows are moved in the table; returns the callids the batch's own rows must
        take instead (``{old: new}``) and the callids whose records must be rebuilt."""
        if not chains:
            return {}, set()
        stored = self._stored(conn, chains) if indexed else self._remembered(chains)
        renames: dict[str, str] = {}
        rebuild: set[str] = set()
        for chain in chains:
            touching = [
                old for old in stored.get(chain.channel, []) if old.touches(chain.first, chain.end)
            ]
            if not touching:
                self._remember(chain)
                continue
            whole = merge([chain, *touching], self.zone)
            for part in (chain, *touching):
                if part.callid != whole.callid:
                    renames[part.callid] = whole.callid
                    rebuild.add(part.callid)
            rebuild.add(whole.callid)
            stored[chain.channel] = [
                old for old in stored[chain.channel] if old not in touching
            ] + [whole]
            self._remember(whole)
        if renames:
            cdr_queries.rename_callids(conn, renames)
        return renames, rebuild

    def _stored(self, conn: Connection, chains: Sequence[Chain]) -> dict[str, list[Chain]]:
        since = min(chain.first for chain in chains) - REACH
        until = max(chain.end for chain in chains) + GAP
        found: dict[str, Chain] = {}
        channels = {chain.channel for chain in chains}
        for callid, channel, start, duration in cdr_queries.derived_rows_near(
            conn, channels, since, until
        ):
            end = start + timedelta(seconds=max(duration, 0))
            known = found.get(callid)
            if known is None:
                found[callid] = Chain(callid, channel, start, end)
            else:
                known.first, known.end = min(known.first, start), max(known.end, end)
        by_channel: dict[str, list[Chain]] = {}
        for chain in found.values():
            by_channel.setdefault(chain.channel, []).append(chain)
        return by_channel

    def _remembered(self, chains: Sequence[Chain]) -> dict[str, list[Chain]]:
        carried = self.carried
        return {c.channel: [carried[c.channel]] for c in chains if c.channel in carried}

    def _remember(self, chain: Chain) -> None:
        carried = self.carried
        if len(carried) >= _CARRIED:
            carried.clear()
        carried[chain.channel] = Chain(chain.callid, chain.channel, chain.first, chain.end)
