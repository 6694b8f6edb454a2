"""Which conversation a CDR row belongs to: its callId. Pure, no I/O.

Asterisk 12+ names a conversation by ``linkedid``: a blind transfer's second
leg, a queue member's Local legs and a parked call all carry the first
channel's. Rows without one use their ``uniqueid``. Rows with neither (a stock
Master.csv, ``loguniqueid=no``) are grouped by their caller channel: its full
name (``SIP/101-0000002a``) is unique while the PBX runs, and the rows of one
call start within the call (a row starts at most ``GAP`` after the end of an
earlier row of the channel: a queue's next round, the row written at hangup).
Such a conversation's callId is derived in Asterisk's own ``epoch.number``
shape: the epoch of its first row's start and the channel's suffix read as hex
(``1796592405.48`` for ``SIP/101-00000030`` starting at 1796592405), so it is
distinct across PBX restarts and the same whatever the order rows arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.domain.dates import to_epoch

GAP = timedelta(seconds=60)
_HEX = frozenset("0123456789abcdefABCDEF")


def conversation_of(row: MutableMapping[str, Any]) -> str:
    """The callId a row names itself (``linkedid``, else ``uniqueid``), or "" when it
    names none and its callId is derived from its channel (``link``)."""
    return str(row.get("linkedid") or row.get("uniqueid") or "")


def channel_number(channel: str) -> int:
    """The channel's suffix as a number (``SIP/101-0000002a`` -> 42); channels without a
    hex suffix get a stable number from their name."""
    name = channel.split(";", 1)[0]
    _, dash, suffix = name.rpartition("-")
    if dash and suffix and set(suffix) <= _HEX and len(suffix) <= 12:
        return int(suffix, 16)
    return int(hashlib.sha256(channel.encode("utf-8")).hexdigest()[:8], 16) % 1_000_000


def derived_callid(first_start: datetime, channel: str, zone: ZoneInfo) -> str:
    """The callId of a conversation without linkedid or uniqueid (see the module doc)."""
    return f"{to_epoch(first_start, zone)}.{channel_number(channel)}"


@dataclass
class Chain:
    """The rows of one caller channel that form one conversation: its callId, and the
    span from its first row's start to the latest end of its rows."""

    callid: str
    channel: str
    first: datetime
    end: datetime

    def touches(self, start: datetime, end: datetime) -> bool:
        """True when a row or chain spanning ``start``..``end`` is part of this one."""
        return start <= self.end + GAP and self.first <= end + GAP


def row_span(row: MutableMapping[str, Any]) -> tuple[datetime, datetime]:
    """(start, end) of a row: its calldate, plus its duration."""
    start: datetime = row["calldate"]
    return start, start + timedelta(seconds=max(int(row.get("duration") or 0), 0))


def link(rows: Iterable[MutableMapping[str, Any]], zone: ZoneInfo) -> list[Chain]:
    """Set ``callid`` on rows that name no conversation, grouping them into chains.

    ``rows`` are normalized rows whose ``callid`` is "" (the others are left alone).
    Returns the chains formed, whose callIds the rows now carry.
    """
    by_channel: dict[str, list[MutableMapping[str, Any]]] = {}
    for row in rows:
        if not row.get("callid"):
            by_channel.setdefault(str(row.get("channel") or ""), []).append(row)
    chains: list[Chain] = []
    for channel, members in by_channel.items():
        members.sort(key=lambda row: (row["calldate"], row.get("row_key") or ""))
        chain: Chain | None = None
        for row in members:
            start, end = row_span(row)
            if chain is None or not chain.touches(start, end):
                chain = Chain(derived_callid(start, channel, zone), channel, start, end)
                chains.append(chain)
            chain.end = max(chain.end, end)
            row["callid"] = chain.callid
    return chains


def merge(chains: list[Chain], zone: ZoneInfo) -> Chain:
    """One chain of several of one channel that touch: the earliest first start names it."""
    first = min(chains, key=lambda chain: chain.first)
    return Chain(
        derived_callid(first.first, first.channel, zone),
        first.channel,
        first.first,
        max(chain.end for chain in chains),
    )
