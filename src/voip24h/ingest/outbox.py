"""Which events a batch's records make: the transactional outbox's rules for ingestion.

A record new to the table is ``record.created``; a stored record whose values changed
is ``record.updated``; a record rebuilt the same as before (a row that changes
nothing) makes no event. A record is known by (callId, user, tenant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voip24h.db.queries.events import values_payload

Record = dict[str, Any]
Key = tuple[str, str, str]


def _key(record: Record) -> Key:
    return (record["callid"], record["user_ext"], record["accountcode"])


def created_from_values(
    values: Sequence[tuple[Any, ...]], payloads: Sequence[str] | None
) -> list[tuple[str, Record]]:
    """``record.created`` for records given as ``record_values`` tuples, with their
    payloads when the parsing worker made them (else they are made from the values)."""
    texts = payloads if payloads is not None else [values_payload(v) for v in values]
    return [
        (
            "record.created",
            {"callid": v[0], "user_ext": v[1], "user_num": v[2], "accountcode": v[3],
             "payload": text},
        )
        for v, text in zip(values, texts, strict=True)
    ]  # fmt: skip


def changes(before: Sequence[Record], after: Sequence[Record]) -> list[tuple[str, Record]]:
    """The events that rebuilding calls from ``before`` to ``after`` makes, in
    ``after``'s order."""
    old = {_key(record): record for record in before}
    found: list[tuple[str, Record]] = []
    for record in after:
        previous = old.get(_key(record))
        if previous is None:
            found.append(("record.created", record))
        elif any(previous.get(name) != value for name, value in record.items()):
            found.append(("record.updated", record))
    return found
