"""getStats: grouped rows (user, period, status, count, talk sum, talk max) become
one entry per user and period. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

ANSWERED = "ANSWERED"


def fold_stats(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Entries ordered by user, then period; talk time counts ANSWERED calls only.

    Each entry: ``user``, ``period`` (``YYYY-MM-DD`` or ``YYYY-MM-DD HH``, local
    time), ``total``, ``byStatus`` (disposition -> count), ``answered``,
    ``talkTime``, ``avgTalkTime`` (seconds, one decimal) and ``maxTalkTime``.
    """
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for user, period, status, count, talk, longest in rows:
        key = (str(user), str(period))
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = {
                "user": key[0],
                "period": key[1],
                "total": 0,
                "byStatus": {},
                "answered": 0,
                "talkTime": 0,
                "avgTalkTime": 0.0,
                "maxTalkTime": 0,
            }
        entry["total"] += int(count)
        entry["byStatus"][str(status)] = entry["byStatus"].get(str(status), 0) + int(count)
        if str(status).upper() == ANSWERED:
            entry["answered"] += int(count)
            entry["talkTime"] += int(talk)
            entry["maxTalkTime"] = max(entry["maxTalkTime"], int(longest))
    for entry in entries.values():
        if entry["answered"]:
            entry["avgTalkTime"] = round(entry["talkTime"] / entry["answered"], 1)
    return [entries[key] for key in sorted(entries)]
