"""One Master.csv record (a RawRecord) -> a normalized ``cdr`` row, or why not. Pure, no I/O.

Values follow Asterisk's ``cdr_csv``: strings quoted with ``""`` inside, integers bare,
an unset time (``answer`` of an unanswered call) an empty field.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.domain import cdr
from voip24h.ingest.csvstream import RawRecord
from voip24h.ingest.layouts import COLUMN_SIZES

# Asterisk writes amaflags as text in Master.csv and as a number in databases.
AMA_FLAGS = {
    "": 0,
    "UNKNOWN": 0,
    "OMIT": 1,
    "BILLING": 2,
    "BILL": 2,
    "DOCUMENTATION": 3,
    "DEFAULT": 3,
}
TIME_FIELDS = ("start", "calldate", "answer", "end")
INT_FIELDS = ("duration", "billsec", "sequence")


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One record of the file: a normalized row, or why it was rejected."""

    line: int
    row: dict[str, Any] | None
    error: str | None
    raw: bytes


class RowParser:
    """Turns RawRecords into normalized ``cdr`` rows for one column layout."""

    def __init__(
        self,
        columns: tuple[str, ...],
        zone: ZoneInfo,
        usegmtime: bool = False,
        delimiter: str = ",",
    ):
        # A field too big for any column must reach the length check that names it,
        # not stop in the CSV reader as "field larger than field limit".
        csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
        self.columns = columns
        self.zone = zone
        self.usegmtime = usegmtime
        self.delimiter = delimiter
        named = list(enumerate(columns))
        self._text = [(i, n, COLUMN_SIZES[n]) for i, n in named if n in cdr.TEXT_COLUMNS]
        self._text_names = [n for _, n, _ in self._text]
        self._shortest = min((size for _, _, size in self._text), default=0)
        self._text_values = _picker([i for i, _, _ in self._text])
        self._ints = [(i, n) for i, n in named if n in INT_FIELDS]
        self._times = [(i, n, cdr.ALIASES.get(n, n)) for i, n in named if n in TIME_FIELDS]
        self._ama = columns.index("amaflags") if "amaflags" in columns else None
        self._template: dict[str, Any] = dict.fromkeys(cdr.TEXT_COLUMNS, "")
        self._template.update(dict.fromkeys(cdr.INT_COLUMNS, 0))
        self._template.update(dict.fromkeys(cdr.TIME_COLUMNS))
        self._template["sequence"] = None
        self._template["callid"] = ""

    def parse(self, record: RawRecord) -> ParsedLine:
        """The row of one record, or a ParsedLine with the reason it was rejected."""
        if record.error:
            return ParsedLine(record.line, None, record.error, record.data)
        try:
            text = record.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ParsedLine(
                record.line, None, f"invalid UTF-8 at byte {exc.start + 1}", record.data
            )
        try:
            fields = split_fields(text, self.delimiter)
        except csv.Error as exc:
            return ParsedLine(record.line, None, f"broken quoting: {exc}", record.data)
        try:
            if cdr.CONTROL.search(text):
                self._check_controls(fields)
            row = self.to_row(fields)
        except ValueError as exc:
            return ParsedLine(record.line, None, str(exc), record.data)
        return ParsedLine(record.line, row, None, record.data)

    def to_row(self, fields: list[str]) -> dict[str, Any]:
        """A normalized row from the fields of one record; ValueError says what is wrong.

        The result is exactly ``cdr.normalize`` of the same values (a test holds
        them together); this is the import's hot path, so it is written out flat.
        """
        if len(fields) != len(self.columns):
            raise ValueError(f"wrong column count: expected {len(self.columns)}, got {len(fields)}")
        out = self._template.copy()
        if self._text and max(map(len, fields)) > self._shortest:
            for index, name, size in self._text:
                if len(fields[index]) > size:
                    raise ValueError(
                        f"too long: {name} has {len(fields[index])} characters, "
                        f"the column holds {size}"
                    )
        out.update(zip(self._text_names, self._text_values(fields), strict=True))
        for index, name in self._ints:
            value = fields[index]
            if value:
                if not (value[1:] if value[0] == "-" else value).isdecimal():
                    raise ValueError(f"bad integer: {name} {value!r}")
                out[name] = cdr.check_int(name, int(value))
        for index, name, target in self._times:
            value = fields[index]
            if value:
                out[target] = self._time(name, value)
        if self._ama is not None:
            value = fields[self._ama]
            flags = value.strip().upper()
            if flags in AMA_FLAGS:
                out["amaflags"] = AMA_FLAGS[flags]
            elif flags.isdecimal():
                out["amaflags"] = cdr.check_int("amaflags", int(flags))
            else:
                raise ValueError(f"bad amaflags: {value!r}")
        if out["calldate"] is None:
            raise ValueError("bad date: start is empty")
        key = out["row_key"] = cdr.row_key(out)
        out["callid"] = out["linkedid"] or out["uniqueid"]  # else derived per batch
        if not out["uniqueid"]:
            out["uniqueid"] = cdr.synthetic_uniqueid(out["calldate"], key, self.zone)
        return out

    def _check_controls(self, fields: list[str]) -> None:
        """ValueError naming the first column that holds a control character."""
        for name, value in zip(self.columns, fields, strict=False):
            cdr.check_text(name, value)

    def _time(self, name: str, value: str) -> datetime:
        text = value.strip()
        try:
            if text.replace(".", "", 1).isdigit():  # ${CDR(start,u)}: epoch seconds
                moment = datetime.fromtimestamp(float(text), UTC)
            else:
                moment = datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"bad date: {name} {value!r} is not a date and time") from None
        if moment.tzinfo is None and self.usegmtime:
            moment = moment.replace(tzinfo=UTC)
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.zone).replace(tzinfo=None)
        return moment.replace(microsecond=0) if moment.microsecond else moment


def _picker(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function taking the fields at ``indexes`` as a tuple (itemgetter, done in C)."""
    if len(indexes) > 1:
        return itemgetter(*indexes)
    if indexes:
        only = indexes[0]
        return lambda fields: (fields[only],)
    return lambda fields: ()


def split_fields(text: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV record (quotes doubled inside, newlines allowed in quotes)."""
    if '"' not in text:
        return text.split(delimiter)
    reader = csv.reader((text,), delimiter=delimiter, strict=True)
    fields = next(reader, [])
    if next(reader, None) is not None:  # pragma: no cover - the splitter prevents this
        raise csv.Error("more than one record")
    return fields
