"""What a validated request asks for: the record, recording and stats queries.

protocol.py checks a request's shape; this module turns it into a query the
services run, with every opt-in part (filters, extended fields, paging, export)
made explicit. A seed-shaped request yields a RecordQuery with none of them set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from voip24h import errors
from voip24h.config import Settings
from voip24h.domain.dates import Window, day_window
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.service.dial import DialQuery
from voip24h.wire import cursor, protocol


@dataclass(frozen=True)
class Filters:
    """Filters in ``data``; the phone number is exact, or a prefix when ``prefix``."""

    statuses: tuple[str, ...] = ()
    call_type: str | None = None
    direction: str | None = None
    phone: str | None = None
    prefix: bool = False


@dataclass(frozen=True)
class RecordQuery:
    """Records to read: one user or all (within scope), over all time or a window.

    ``call`` narrows to one call's legs; ``fields`` are opt-in extended fields;
    ``limit`` (with an optional ``after`` cursor) asks for one keyset page;
    ``format`` other than json streams every match as CSV or NDJSON.
    """

    user: str | None
    window: Window | None
    call: str | None = None
    filters: Filters = field(default_factory=Filters)
    fields: tuple[str, ...] = ()
    limit: int | None = None
    after: cursor.Cursor | None = None
    format: str = "json"


@dataclass(frozen=True)
class RecordingQuery:
    """A link to one call's recording, to listen (inline) or download (attachment)."""

    call: str
    download: bool
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True)
class StatsQuery:
    """Counts and talk time per user and local day (or hour) of a window."""

    user: str | None
    window: Window
    hourly: bool
    filters: Filters = field(default_factory=Filters)


Query = RecordQuery | RecordingQuery | StatsQuery | DialQuery
NO_FILTERS = Filters()


_BY_USER = (protocol.GetUserData, protocol.GetUserDateData)
_BY_WINDOW = (protocol.GetDateData, protocol.GetUserDateData)


@lru_cache(maxsize=4096)
def _window(from_text: str, to_text: str, zone: ZoneInfo, max_days: int) -> Window:
    """day_window, remembered: partners ask for the same few windows over and over, and
    parsing two dates and finding two local midnights is most of a request's own work.
    Invalid windows raise every time (exceptions are not cached)."""
    return day_window(from_text, to_text, zone, max_days)


def to_query(data: protocol.RequestData, settings: Settings, matcher: ExtensionMatcher) -> Query:
    """The query a validated request asks for (getDate ignores its user field)."""
    if isinstance(data, protocol.MakeDialData):
        return DialQuery(str(data.user), data.phoneNumber, data.idempotencyKey)
    if isinstance(data, protocol.RecordingData):
        download = isinstance(data, protocol.RecordingDownloadData)
        return RecordingQuery(data.callId, download, _filters(data))
    if isinstance(data, protocol.GetStatsData):
        days = _window(data.fromDate, data.toDate, settings.zone, settings.max_range_days)
        who = None if data.user is None else _user(data.user, matcher)
        return StatsQuery(who, days, data.groupBy == "hour", _filters(data))
    user = None
    if isinstance(data, _BY_USER):
        user = _user(data.user, matcher)
    window: Window | None = None
    if isinstance(data, _BY_WINDOW):
        window = _window(data.fromDate, data.toDate, settings.zone, settings.max_range_days)
    call = data.callId if isinstance(data, protocol.GetCallDataData) else None
    assert isinstance(data, protocol.RecordsData)
    limit, after = _page(data, settings) if isinstance(data, protocol.ListingData) else (None, None)
    fmt = data.format or "json"
    if fmt != "json" and limit is not None:
        raise errors.InvalidField(
            "data.format streams every matching record: send it without limit/cursor."
        )
    return RecordQuery(user, window, call, _filters(data), _fields(data), limit, after, fmt)


def _filters(data: protocol.FilteredData) -> Filters:
    if (
        data.callStatus is None
        and data.callType is None
        and data.direction is None
        and data.phoneNumber is None
        and data.phonePrefix is None
    ):
        return NO_FILTERS  # the common case: no filter at all
    if data.phoneNumber is not None and data.phonePrefix is not None:
        raise errors.InvalidField("Send data.phoneNumber or data.phonePrefix, not both.")
    phone, prefix = data.phoneNumber, False
    if data.phonePrefix is not None:
        phone, prefix = data.phonePrefix, True
    elif phone is not None and phone.endswith("*"):
        # "098*": a prefix, the way partners write it in spreadsheets and PBX dialplans.
        phone, prefix = phone[:-1], True
        if not phone:
            raise errors.InvalidField("data.phoneNumber: '*' needs at least one digit before it.")
    statuses = tuple(dict.fromkeys(s.upper() for s in data.callStatus or ()))
    return Filters(statuses, data.callType, data.direction, phone, prefix)


def _fields(data: protocol.RecordsData) -> tuple[str, ...]:
    if data.fields is None and not data.extended:
        return ()
    if data.extended and data.fields is not None:
        raise errors.InvalidField("Send data.extended or data.fields, not both.")
    if data.extended:
        return protocol.EXTENDED_FIELDS
    wanted = set(data.fields or ())
    # Always in the documented order, whatever order the request listed them in.
    return tuple(name for name in protocol.EXTENDED_FIELDS if name in wanted)


def _page(
    data: protocol.ListingData, settings: Settings
) -> tuple[int | None, cursor.Cursor | None]:
    after = cursor.decode(data.cursor) if data.cursor is not None else None
    if data.limit is None:
        return (settings.page_size, after) if after is not None else (None, None)
    if data.limit > settings.max_page_size:
        raise errors.InvalidField(
            f"data.limit must be at most {settings.max_page_size}; page with nextCursor."
        )
    return data.limit, after


def _user(value: str | int, matcher: ExtensionMatcher) -> str:
    user = str(value)
    if not matcher.is_extension(user):
        shown = repr(user if len(user) <= 40 else user[:40] + "…")
        raise errors.InvalidUser(f"user {shown} is not an extension number of this PBX.")
    return user
