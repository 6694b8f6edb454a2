"""The contract: Asterisk CDR rows become partner call records. Pure, no I/O.

The same functions serve import, sync, reindex and the tests, so a rule is
written once. See docs/mapping.md for the rules in plain words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.domain.dates import CALL_DATE_FORMAT, to_epoch
from voip24h.domain.partners import ExtensionSet, canonical_number, parse_extensions

INTERNAL, EXTERNAL = "INTERNAL", "EXTERNAL"
INBOUND, OUTBOUND = "INBOUND", "OUTBOUND"

_RANK = {"ANSWERED": 0, "BUSY": 1, "NO ANSWER": 2, "CONGESTION": 3, "CANCEL": 3, "FAILED": 4}
_ANNOTATION = re.compile(r"<[^>]*>$")
_HEX = "0123456789abcdefABCDEF"
_CACHE_SIZE = 4096  # channels and names remembered by a matcher (bounded memory)


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
    if ";" in rest:
        rest = rest.split(";", 1)[0]
    if ">" in rest:
        rest = _ANNOTATION.sub("", rest)
    # `(.+)-[0-9a-fA-F]+` in full, without the regex: the suffix after the last "-"
    # is all hex digits, and the name before it is non-empty and has no newline.
    name, dash, suffix = rest.rpartition("-")
    if dash and name and suffix and not suffix.strip(_HEX) and "\n" not in name:
        return name
    return rest or None


class ExtensionMatcher:
    """Decides which endpoint names are extensions (pattern, or an explicit list)."""

    def __init__(self, pattern: str = "[0-9]{2,6}", explicit: str = ""):
        self._pattern = re.compile(pattern, re.ASCII)
        self._explicit: ExtensionSet | None = parse_extensions(explicit) if explicit else None
        self._channels: dict[str | None, str | None] = {}
        self._names: dict[str, bool] = {}

    def is_extension(self, name: str | None) -> bool:
        if not name:
            return False
        if self._explicit is not None:
            return name in self._explicit
        return self._pattern.fullmatch(name) is not None

    def of_channel(self, channel: str | None) -> str | None:
        """The extension a channel belongs to, or None (remembered per channel text)."""
        cache = self._channels
        if channel in cache:
            return cache[channel]
        name = endpoint_name(channel)
        found = name if self.is_extension(name) else None
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[channel] = found
        return found

    def _is_extension_cached(self, name: str) -> bool:
        cache = self._names
        found = cache.get(name)
        if found is None:
            found = self.is_extension(name)
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[name] = found
        return found


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


Leg = tuple[str, str, str, str, str]
"""(user, tenant, phoneNumber, callType, direction) of one record a row yields."""


def legs(row: Mapping[str, Any], matcher: ExtensionMatcher) -> list[Leg]:
    """(user, tenant, phoneNumber, callType, direction) for each record one CDR row yields."""
    return _legs(row, row.get, matcher)


def _legs(
    row: Mapping[str, Any], get: Callable[[str], Any], matcher: ExtensionMatcher
) -> list[Leg]:
    a = matcher.of_channel(_str(get("channel")))
    if a is None and "cnum" in row:
        cnum = _str(get("cnum"))
        if cnum and matcher._is_extension_cached(cnum):
            a = cnum
    dstchannel = _str(get("dstchannel"))
    b = matcher.of_channel(dstchannel)
    # A Dial that never got a channel (CHANUNAVAIL, congestion) names its callee in
    # dst; any other application's dst (a queue, conference, IVR, feature code) is
    # a number of the dialplan, never a person.
    dialled = not dstchannel and _str(get("lastapp")).lower() == "dial"
    if b is None and dialled:
        dst = _str(get("dst"))
        if dst and matcher._is_extension_cached(dst):
            b = dst
    account = _str(get("accountcode"))
    peer = _str(get("peeraccount")) or account
    if a and b:
        if a == b:  # Local channel plumbing: an agent "calling himself"
            return []
        return [(a, account, b, INTERNAL, INTERNAL), (b, peer, a, INTERNAL, INTERNAL)]
    if a:
        dst = _str(get("dst"))
        # Outbound only when the row dialled out: to a trunk channel, or a Dial that
        # failed before it had one. A row of one party alone (Park, voicemail, an
        # originate leg to `s`, Playback) is no call with anyone.
        if dstchannel or (dialled and dst):
            return [(a, account, dst, EXTERNAL, OUTBOUND)]
        return []
    if b:
        return [(b, peer, _str(get("src")), EXTERNAL, INBOUND)]
    return []


def _str(value: Any) -> str:
    """A row's text value as ``str`` (None is empty)."""
    if type(value) is str:
        return value
    return "" if value is None else str(value)


def _number(value: Any) -> int:
    """A row's integer value (None, empty or bad is 0)."""
    if type(value) is int:
        return value
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _start(get: Callable[[str], Any]) -> datetime:
    """``row_start`` through the row's ``get``."""
    value = get("calldate")
    if value is None or value == "":
        value = get("start")
    if type(value) is datetime and value.tzinfo is None:
        return value
    return as_datetime(value)


def _call_date(start: datetime) -> str:
    """``start.strftime(CALL_DATE_FORMAT)``; isoformat gives the same text faster."""
    if start.tzinfo is None and start.year >= 1000:
        return start.isoformat(" ", "seconds")
    return start.strftime(CALL_DATE_FORMAT)


def records_for_call(
    rows: Iterable[Mapping[str, Any]], matcher: ExtensionMatcher, zone: ZoneInfo
) -> list[CallRecord]:
    """Records of the rows of one conversation (one callid): at most one per user.

    The row kept for a user is the best by disposition rank, then billsec; further
    ties go to the earliest start, lowest sequence, then row key, so the choice does
    not depend on the order rows arrive in (each backend sorts NULLs differently).
    callDate is the earliest start of the user's rows.
    """
    # The import's hot path: each field is read once per row, channels are resolved
    # through the matcher's cache.
    if type(rows) is list and len(rows) == 1:  # most calls: one row, nothing to rank
        row = rows[0]
        get = row.get
        start = _start(get)
        return [_record(get, leg, start, zone) for leg in _legs(row, get, matcher)]
    chosen: dict[str, tuple[tuple[Any, ...], Mapping[str, Any], Leg]] = {}
    earliest: dict[str, datetime] = {}
    rank_of = _RANK.get
    for row in rows:
        get = row.get
        start = _start(get)
        sequence = get("sequence")
        disposition = _str(get("disposition"))
        rank = rank_of(disposition)
        key = (
            disposition_rank(disposition) if rank is None else rank,
            -_number(get("billsec")),
            start,
            -1 if sequence is None else int(sequence),
            _str(get("row_key")),
        )
        for leg in _legs(row, get, matcher):
            party = leg[0]
            if party not in earliest or start < earliest[party]:
                earliest[party] = start
            if party not in chosen or key < chosen[party][0]:
                chosen[party] = (key, row, leg)
    return [_record(row.get, leg, earliest[party], zone) for party, (_, row, leg) in chosen.items()]


def _record(get: Callable[[str], Any], leg: Leg, start: datetime, zone: ZoneInfo) -> CallRecord:
    """The record of one (call, user): ``leg`` of the row read by ``get``, dated ``start``."""
    user, tenant, phone, call_type, direction = leg
    return CallRecord(
        _str(get("callid") or get("uniqueid")),
        user,
        _user_number(user),
        tenant,
        to_epoch(start, zone),
        _call_date(start),
        phone,
        call_type,
        _str(get("disposition")),
        direction,
        _number(get("duration")),
        _number(get("billsec")),
        _str(get("did")),
        _str(get("linkedid")),
        _str(get("recordingfile")),
    )


_user_number = lru_cache(maxsize=_CACHE_SIZE)(canonical_number)


def group_by_callid(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows bucketed by conversation (``callid``, else ``uniqueid``), keeping their order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_str(row.get("callid") or row.get("uniqueid")), []).append(row)
    return groups
