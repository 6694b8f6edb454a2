"""Dates of the protocol: dd/mm/yyyy days in the PBX's zone, and callDate rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from voip24h.errors import DateRangeReversed, DateRangeTooLarge, InvalidDate

_DAY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", re.ASCII)
MIN_YEAR, MAX_YEAR = 1970, 2999
CALL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_day(text: object, field: str = "date") -> date:
    """A calendar day from ``dd/mm/yyyy``; InvalidDate names the field otherwise."""
    if not isinstance(text, str):
        raise InvalidDate(f"{field} must be a string in dd/mm/yyyy format.")
    match = _DAY.fullmatch(text)
    if not match:
        raise InvalidDate(f"{field} must be a date in dd/mm/yyyy format, got {_show(text)}.")
    day, month, year = (int(part) for part in match.groups())
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidDate(f"{field}: year must be between {MIN_YEAR} and {MAX_YEAR}.")
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidDate(f"{field}: {_show(text)} is not a real calendar date.") from None


def format_day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


@dataclass(frozen=True)
class Window:
    """Whole local days [first, last], as UTC epoch seconds [start, end)."""

    first: date
    last: date
    start: int
    end: int


def day_window(from_text: object, to_text: object, zone: ZoneInfo, max_days: int) -> Window:
    """Validate fromDate/toDate and turn them into UTC epoch bounds."""
    first = parse_day(from_text, "fromDate")
    last = parse_day(to_text, "toDate")
    if first > last:
        raise DateRangeReversed(
            f"fromDate ({format_day(first)}) must not be after toDate ({format_day(last)})."
        )
    days = (last - first).days + 1
    if days > max_days:
        raise DateRangeTooLarge(
            f"The date range covers {days} days; at most {max_days} are allowed per request. "
            "Split it into smaller ranges."
        )
    return Window(
        first, last, local_midnight(first, zone), local_midnight(last + timedelta(1), zone)
    )


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """UTC epoch seconds of the start of ``day`` in ``zone``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def to_epoch(moment: datetime, zone: ZoneInfo) -> int:
    """Epoch seconds of a datetime; a naive one is read as local time in ``zone``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return int(moment.timestamp())


def render_epoch(epoch: int, zone: ZoneInfo) -> str:
    """callDate text (``YYYY-MM-DD HH:MM:SS``) of an epoch in ``zone``."""
    return datetime.fromtimestamp(epoch, tz=UTC).astimezone(zone).strftime(CALL_DATE_FORMAT)


def gmt_to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """A naive GMT datetime (Master.csv with usegmtime=yes) as naive local time."""
    return moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _show(text: str) -> str:
    return repr(text[:40] + ("…" if len(text) > 40 else ""))
