"""Typed call records and pages, parsed from the wire's JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.client.errors import ProtocolError

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
CALL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
WIRE_DATE_FORMAT = "%d/%m/%Y"

# Extended fields (opt-in per request on servers that offer them): wire name -> attribute.
_EXTENDED = {
    "duration": "duration",
    "billsec": "billsec",
    "direction": "direction",
    "disposition": "disposition",
    "accountcode": "accountcode",
    "did": "did",
    "linkedid": "linkedid",
    "hasRecording": "has_recording",
}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call record: the six seed fields, typed, plus any extended fields asked for.

    ``call_date`` is an aware datetime in the PBX's time zone. ``raw`` keeps the record
    exactly as received (wire names, strings), for fields this class does not know.
    """

    call_id: str
    user: str
    phone_number: str
    call_type: str
    call_status: str
    call_date: datetime
    duration: int | None = None
    billsec: int | None = None
    direction: str | None = None
    disposition: str | None = None
    accountcode: str | None = None
    did: str | None = None
    linkedid: str | None = None
    has_recording: bool | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, item: Mapping[str, Any], zone: ZoneInfo) -> CallRecord:
        """Parse one element of ``data``; ProtocolError when a seed field is missing."""
        try:
            call_date = parse_call_date(str(item["callDate"]), zone)
            extended: dict[str, Any] = {
                attr: item[wire] for wire, attr in _EXTENDED.items() if wire in item
            }
            return cls(
                call_id=str(item["callId"]),
                user=str(item["user"]),
                phone_number=str(item["phoneNumber"]),
                call_type=str(item["callType"]),
                call_status=str(item["callStatus"]),
                call_date=call_date,
                raw=dict(item),
                **extended,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not a call record: {exc}", status=200) from None

    def to_wire(self) -> dict[str, Any]:
        """The record as the server sent it (wire names, callDate as text)."""
        return dict(self.raw)


@dataclass(frozen=True, slots=True)
class StatsEntry:
    """``getStats``: one user's calls in one local day (``YYYY-MM-DD``) or hour (``... HH``)."""

    user: str
    period: str
    total: int
    by_status: Mapping[str, int]
    answered: int
    talk_time: int
    avg_talk_time: float
    max_talk_time: int

    @classmethod
    def from_wire(cls, item: Mapping[str, Any]) -> StatsEntry:
        try:
            return cls(
                user=str(item["user"]),
                period=str(item["period"]),
                total=int(item["total"]),
                by_status={str(k): int(v) for k, v in dict(item["byStatus"]).items()},
                answered=int(item["answered"]),
                talk_time=int(item["talkTime"]),
                avg_talk_time=float(item["avgTalkTime"]),
                max_talk_time=int(item["maxTalkTime"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not a stats entry: {exc}", status=200) from None


@dataclass(frozen=True, slots=True)
class DialResult:
    """How a makeDial ended: ``result`` is answered, busy, no_answer, congested,
    no_such_extension or failed; ``call_id`` is the call's id (its records' callId)."""

    result: str
    call_id: str
    user: str
    phone_number: str
    reason: str = ""

    @classmethod
    def from_wire(cls, item: Any) -> DialResult:
        """Parse makeDial's ``data``."""
        try:
            return cls(str(item["result"]), str(item["callId"]), str(item["user"]),
                       str(item["phoneNumber"]), str(item.get("reason", "")))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"not a makeDial answer: {exc}", status=200) from None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged request: its records and the cursor of the next page, if any."""

    records: list[CallRecord]
    next_cursor: str | None


def parse_call_date(text: str, zone: ZoneInfo) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (PBX local time) as an aware datetime in ``zone``."""
    return datetime.strptime(text, CALL_DATE_FORMAT).replace(tzinfo=zone)


def wire_date(value: date | str) -> str:
    """A day for fromDate/toDate: a ``date``/``datetime`` becomes ``dd/mm/yyyy``.

    Text is sent as given (the server validates it and explains any mistake).
    """
    if isinstance(value, datetime | date):
        return value.strftime(WIRE_DATE_FORMAT)
    return str(value)
