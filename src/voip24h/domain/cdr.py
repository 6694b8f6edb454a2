"""A CDR row as stored: Asterisk column names, defaults, and its idempotency key. Pure."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.domain.conversations import conversation_of
from voip24h.domain.dates import to_epoch
from voip24h.domain.mapping import as_datetime

TEXT_COLUMNS = (
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "disposition",
    "accountcode",
    "uniqueid",
    "userfield",
    "did",
    "recordingfile",
    "cnum",
    "cnam",
    "outbound_cnum",
    "outbound_cnam",
    "dst_cnam",
    "linkedid",
    "peeraccount",
)
INT_COLUMNS = ("duration", "billsec", "amaflags")
TIME_COLUMNS = ("calldate", "answer", "end")
ALIASES = {"start": "calldate"}

# The integer columns are 32-bit on every backend (SQLite's 64-bit ones refuse more still).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Control characters no CDR holds: PostgreSQL refuses NUL outright, and the others
# would store bytes a partner's JSON parser or CSV reader chokes on. Tab, newline and
# carriage return stay: a quoted clid may hold them.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(name: str, value: str) -> None:
    """Raise ValueError naming ``name`` when ``value`` holds a control character."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(
            f"control character: {name} holds byte 0x{ord(found.group()):02x} "
            f"at character {found.start() + 1}"
        )


def check_int(name: str, value: int) -> int:
    """``value``, or ValueError naming ``name`` when it does not fit the 32-bit columns."""
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(
            f"out of range: {name} {value} does not fit the column "
            f"({INT_MIN} to {INT_MAX})"
        )
    return value


def row_key(row: Mapping[str, Any]) -> str:
    """Identity of a row: (uniqueid, sequence) where the source has a sequence.

    Without a sequence several rows legitimately share a uniqueid (queues, forks),
    so the key is a digest of the whole row: loading the same row twice is a no-op.
    """
    if row.get("uniqueid") and row.get("sequence") is not None:
        natural = f"u\x1f{row['uniqueid']}\x1f{row['sequence']}"
    else:
        parts = [str(row.get(name) or "") for name in TIME_COLUMNS + TEXT_COLUMNS + INT_COLUMNS]
        natural = "c\x1f" + "\x1f".join(parts)
    return hashlib.sha256(natural.encode("utf-8")).hexdigest()[:40]


def synthetic_uniqueid(start: datetime, key: str, zone: ZoneInfo) -> str:
    """A uniqueid for rows logged without one, shaped like Asterisk's (epoch.number)."""
    return f"{to_epoch(start, zone)}.{int(key[:8], 16) % 1_000_000}"


def normalize(raw: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A complete row for the ``cdr`` table from any mapping of Asterisk columns.

    Accepts ``start`` for ``calldate``, text or datetime times, missing columns
    (empty text, zero integers). Raises ValueError on a bad time or integer.
    """
    row: dict[str, Any] = {}
    for name, value in raw.items():
        row[ALIASES.get(name, name)] = value
    out: dict[str, Any] = {}
    for name in TEXT_COLUMNS:
        value = row.get(name)
        out[name] = "" if value is None else str(value)
        check_text(name, out[name])
    for name in INT_COLUMNS:
        value = row.get(name)
        if value in (None, ""):
            out[name] = 0
        elif isinstance(value, bool):
            raise ValueError(f"{name}: not an integer")
        else:
            try:
                out[name] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: {value!r} is not an integer") from None
            check_int(name, out[name])
    for name in TIME_COLUMNS:
        value = row.get(name)
        if value in (None, ""):
            out[name] = None
            continue
        try:
            out[name] = as_datetime(value).replace(microsecond=0)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a date and time") from None
    if out["calldate"] is None:
        raise ValueError("calldate/start is missing")
    sequence = row.get("sequence")
    if sequence in (None, ""):
        out["sequence"] = None
    else:
        try:
            out["sequence"] = int(sequence)
        except (TypeError, ValueError):
            raise ValueError(f"sequence: {sequence!r} is not an integer") from None
        check_int("sequence", out["sequence"])
    out["row_key"] = row_key(out)
    out["callid"] = conversation_of(out)  # "" until conversations.link derives it
    if not out["uniqueid"]:
        out["uniqueid"] = synthetic_uniqueid(out["calldate"], out["row_key"], zone)
    return out
