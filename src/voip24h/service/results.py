"""What the record service answers, before it is rendered for the wire (responses.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any


class RenderedRecords(Sequence[Sequence[Any]]):
    """Seed records the database rendered itself as the wire's JSON array (SQLite's
    json1); ``len()`` is their count. It stands where a list of rows would
    (``Page.rows``) but is only ever sent, as ``json``."""

    def __init__(self, count: int, json: bytes):
        self._count = count
        self.json = json

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("rendered records are sent as they are, as json")


@dataclass(frozen=True)
class Page:
    """Records (rows of seed columns, extended fields, keyset columns).

    ``seed`` rows carry the six seed columns only and render exactly as the seed;
    ``paged`` answers add ``nextCursor`` (null on the last page).
    """

    rows: Sequence[Sequence[Any]]
    fields: tuple[str, ...]
    seed: bool = False
    paged: bool = False
    next_cursor: str | None = None


@dataclass(frozen=True)
class Export:
    """Every matching record, read from the database chunk by chunk while it is sent."""

    chunks: AsyncIterator[Sequence[Sequence[Any]]]
    fields: tuple[str, ...]
    format: str


@dataclass(frozen=True)
class Link:
    """A signed recording link: a path on this server, valid until ``expires`` (epoch)."""

    path: str
    expires: int


@dataclass(frozen=True)
class Stats:
    """Statistics rows, one per user and period."""

    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Dialed:
    """How a makeDial ended: ``result`` is answered, busy, no_answer, congested,
    no_such_extension or failed; ``call_id`` is the call's (the records' callId)."""

    result: str
    call_id: str
    user: str
    phone_number: str
    reason: str = ""
    replayed: bool = False

    def wire(self) -> dict[str, str]:
        """The answer's data as partners receive it."""
        return {"result": self.result, "callId": self.call_id, "user": self.user,
                "phoneNumber": self.phone_number, "reason": self.reason}


Result = Page | Export | Link | Stats | Dialed


def records_in(result: Result) -> int:
    """How many records an answer carries (an export's count is not known in advance: 0)."""
    if isinstance(result, Page | Stats):
        return len(result.rows)
    return 1 if isinstance(result, Link) else 0
