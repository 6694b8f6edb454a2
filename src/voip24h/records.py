"""The contract: Asterisk CDR rows become partner call records. Pure, no I/O.

The same functions serve import, sync, reindex and the tests, so a rule is
written once. See docs/mapping.md for the rules in plain words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.dates import CALL_DATE_FORMAT, to_epoch
from voip24h.partners import ExtensionSet, canonical_number, parse_extensions

INTERNAL, EXTERNAL = "INTERNAL", "EXTERNAL"
INBOUND, OUTBOUND = "INBOUND", "OUTBOUND"

_RANK = {"ANSWERED": 0, "BUSY": 1, "NO ANSWER": 2, "CONGESTION": 3, "CANCEL": 3, "FAILED": 4}
_SUFFIX = re.compile(r"(.+)-[0-9a-fA-F]+", re.ASCII)
_ANNOTATION = re.compile(r"<[^>]*>$")


def disposition_rank(disposition: str) -> int:
    """ANSWERED > BUSY > NO ANSWER > CONGESTION/CANCEL > FAILED > anything else."""
    return _RANK.get(disposition.strip().upper(), 5)


def endpoint_name(channel: str | None) -> str | None:
    """NAME of a channel ``TECH/NAME-suffix`` (``Local/NAME@context-…``), or None."""
    if not channel or "/" not in channel:
        return None
    tech, _, rest = channel.partition("/")
    if tech.lower() == "local":
        name = rest.split("@", 1)[0]
        return name or None
    rest = _ANNOTATION.sub("", rest.split(";", 1)[0])
    match = _SUFFIX.fullmatch(rest)
    return (match.group(1) if match else rest) or None


class ExtensionMatcher:
    """Decides which endpoint names are extensions (pattern, or an explicit list)."""

    def __init__(self, pattern: str = "[0-9]{2,6}", explicit: str = ""):
        self._pattern = re.compile(pattern, re.ASCII)
        self._explicit: ExtensionSet | None = parse_extensions(explicit) if explicit else None

    def is_extension(self, name: str | None) -> bool:
        if not name:
            return False
        if self._explicit is not None:
            return name in self._explicit
        return self._pattern.fullmatch(name) is not None

    def of_channel(self, channel: str | None) -> str | None:
        name = endpoint_name(channel)
        return name if self.is_extension(name) else None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One partner-visible record: one (callId, user) of one call."""

    callid: str
    user: str
    user_num: int | None
    accountcode: str
    call_ts: int
    call_date: str
    phone_number: str
    call_type: str
    call_status: str
    direction: str
    duration: int
    billsec: int
    did: str
    linkedid: str
    recordingfile: str


def as_datetime(value: Any) -> datetime:
    """A CDR time as a naive datetime (drivers give datetimes, files give text)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    return datetime.fromisoformat(str(value).strip())


def row_start(row: Mapping[str, Any]) -> datetime:
    """Start of a CDR row: FreePBX's ``calldate`` or Asterisk's ``start``."""
    value = row.get("calldate")
    if value in (None, ""):
        value = row.get("start")
    return as_datetime(value)


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


def _int(row: Mapping[str, Any], key: str) -> int:
    try:
        return int(row.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def legs(row: Mapping[str, Any], matcher: ExtensionMatcher) -> list[tuple[str, str, str, str]]:
    """(user, phoneNumber, callType, direction) for each record one CDR row yields."""
    a = matcher.of_channel(_text(row, "channel"))
    if a is None and "cnum" in row and matcher.is_extension(_text(row, "cnum")):
        a = _text(row, "cnum")
    dstchannel = _text(row, "dstchannel")
    b = matcher.of_channel(dstchannel)
    if b is None and not dstchannel and matcher.is_extension(_text(row, "dst")):
        b = _text(row, "dst")
    if a and b:
        return [(a, b, INTERNAL, INTERNAL)] + ([(b, a, INTERNAL, INTERNAL)] if b != a else [])
    if a:
        return [(a, _text(row, "dst"), EXTERNAL, OUTBOUND)]
    if b:
        return [(b, _text(row, "src"), EXTERNAL, INBOUND)]
    return []


def records_for_call(
    rows: Iterable[Mapping[str, Any]], matcher: ExtensionMatcher, zone: ZoneInfo
) -> list[CallRecord]:
    """Records of the rows sharing one uniqueid: at most one per (callId, user).

    The row kept for a user is the best by disposition rank, then billsec; further
    ties go to the earliest start, lowest sequence, then row key, so the choice does
    not depend on the order rows arrive in (each backend sorts NULLs differently).
    callDate is the earliest start of the user's rows.
    """
    chosen: dict[str, tuple[tuple[Any, ...], Mapping[str, Any], tuple[str, str, str, str]]] = {}
    earliest: dict[str, datetime] = {}
    for row in rows:
        start = row_start(row)
        sequence = row.get("sequence")
        key = (
            disposition_rank(_text(row, "disposition")),
            -_int(row, "billsec"),
            start,
            -1 if sequence is None else int(sequence),
            _text(row, "row_key"),
        )
        for leg in legs(row, matcher):
            user = leg[0]
            if user not in earliest or start < earliest[user]:
                earliest[user] = start
            if user not in chosen or key < chosen[user][0]:
                chosen[user] = (key, row, leg)
    records = []
    for user, (_, row, (_, phone, call_type, direction)) in chosen.items():
        start = earliest[user]
        records.append(
            CallRecord(
                callid=_text(row, "uniqueid"),
                user=user,
                user_num=canonical_number(user),
                accountcode=_text(row, "accountcode"),
                call_ts=to_epoch(start, zone),
                call_date=start.strftime(CALL_DATE_FORMAT),
                phone_number=phone,
                call_type=call_type,
                call_status=_text(row, "disposition"),
                direction=direction,
                duration=_int(row, "duration"),
                billsec=_int(row, "billsec"),
                did=_text(row, "did"),
                linkedid=_text(row, "linkedid"),
                recordingfile=_text(row, "recordingfile"),
            )
        )
    return records


def group_by_uniqueid(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows bucketed by uniqueid, keeping their order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_text(row, "uniqueid"), []).append(row)
    return groups
