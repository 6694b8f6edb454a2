"""Master.csv (Asterisk ``cdr_csv``) and ``cdr_custom`` records to CDR rows. Pure, no I/O.

Column order is Asterisk's (cdr/cdr_csv.c ``build_csv_record``): the 16 default
columns, then ``uniqueid`` (loguniqueid), ``userfield`` (loguserfield), then
``peeraccount``, ``linkedid``, ``sequence`` (newcdrcolumns). Strings are quoted
with ``""`` inside, integers bare, an unset time (``answer`` of an unanswered
call) is an empty field.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String

from voip24h import cdr
from voip24h.csvstream import RawRecord
from voip24h.db.schema import cdr as cdr_table

BASE_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
NEW_CDR_COLUMNS = ("peeraccount", "linkedid", "sequence")
FLAG_NAMES = ("loguniqueid", "loguserfield", "newcdrcolumns")
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
SKIP = ("-", "_")
# Longest text each cdr column holds (characters), from the schema.
COLUMN_SIZES: dict[str, int] = {
    column.name: column.type.length
    for column in cdr_table.columns
    if isinstance(column.type, String) and column.type.length and column.name != "row_key"
}
KNOWN_COLUMNS = frozenset(COLUMN_SIZES) | {
    "start",
    "calldate",
    "answer",
    "end",
    "duration",
    "billsec",
    "amaflags",
    "sequence",
}


class LayoutError(ValueError):
    """The file's columns do not fit any layout, or fit more than one."""


@dataclass(frozen=True)
class Layout:
    """The columns of a Master.csv, named as in Asterisk's ``cdr.conf``."""

    loguniqueid: bool = False
    loguserfield: bool = False
    newcdrcolumns: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        columns: tuple[str, ...] = BASE_COLUMNS
        if self.loguniqueid:
            columns += ("uniqueid",)
        if self.loguserfield:
            columns += ("userfield",)
        if self.newcdrcolumns:
            columns += NEW_CDR_COLUMNS
        return columns

    def flags(self) -> list[str]:
        return [name for name in FLAG_NAMES if getattr(self, name)]

    def describe(self) -> str:
        """``17 columns (loguniqueid)``: for messages and the summary."""
        return f"{len(self.columns)} columns ({', '.join(self.flags()) or 'default layout'})"


ALL_LAYOUTS = tuple(
    Layout(u, f, n) for u in (False, True) for f in (False, True) for n in (False, True)
)


def detect_layout(column_count: int) -> Layout:
    """The layout with this many columns; LayoutError when none or several fit.

    16, 18, 19 and 21 columns are unambiguous; 17 (loguniqueid or loguserfield)
    and 20 (either of them with newcdrcolumns) are not, so they are refused.
    """
    fits = [layout for layout in ALL_LAYOUTS if len(layout.columns) == column_count]
    if not fits:
        raise LayoutError(
            f"lines have {column_count} columns; Master.csv has 16 to 21 "
            "(give --columns for a cdr_custom file)"
        )
    if len(fits) > 1:
        options = " or ".join(" ".join(f"--{n}" for n in layout.flags()) for layout in fits)
        raise LayoutError(
            f"lines have {column_count} columns, which fits {options}: "
            "say which with the cdr.conf flags"
        )
    return fits[0]


def layout_from_counts(counts: Iterable[int]) -> Layout:
    """The layout of a file from the column counts of its first records (the most common)."""
    common = Counter(counts).most_common(1)
    if not common:
        return Layout()
    return detect_layout(common[0][0])


def custom_columns(spec: str) -> tuple[str, ...]:
    """Column names of a ``cdr_custom`` file from ``--columns clid,src,...`` (``-`` skips one)."""
    names = tuple(name.strip().lower() for name in spec.split(","))
    unknown = [n for n in names if n not in KNOWN_COLUMNS and n not in SKIP]
    if unknown:
        raise LayoutError(
            f"unknown column(s) {', '.join(unknown)}; use cdr column names "
            f"({', '.join(sorted(KNOWN_COLUMNS))}) or - to skip one"
        )
    used = [n for n in names if n not in SKIP]
    repeated = sorted({n for n in used if used.count(n) > 1})
    if repeated:
        raise LayoutError(f"column(s) named twice: {', '.join(repeated)}")
    if "start" not in used and "calldate" not in used:
        raise LayoutError("the columns must include start (or calldate)")
    return names


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
        self.columns = columns
        self.zone = zone
        self.usegmtime = usegmtime
        self.delimiter = delimiter
        self._times = [(i, n) for i, n in enumerate(columns) if n in TIME_FIELDS]
        self._ama = columns.index("amaflags") if "amaflags" in columns else None
        self._keep = [(i, n) for i, n in enumerate(columns) if n not in SKIP]
        self._ints = [(i, n) for i, n in enumerate(columns) if n in INT_FIELDS]

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
            row = self.to_row(fields)
        except ValueError as exc:
            return ParsedLine(record.line, None, str(exc), record.data)
        return ParsedLine(record.line, row, None, record.data)

    def to_row(self, fields: list[str]) -> dict[str, Any]:
        """A normalized row from the fields of one record; ValueError says what is wrong."""
        if len(fields) != len(self.columns):
            raise ValueError(f"wrong column count: expected {len(self.columns)}, got {len(fields)}")
        raw: dict[str, Any] = {name: fields[i] for i, name in self._keep}
        for index, name in self._ints:
            value = fields[index]
            if value and not (value[1:] if value[0] == "-" else value).isdecimal():
                raise ValueError(f"bad integer: {name} {value!r}")
        for index, name in self._times:
            value = fields[index]
            if value:
                raw[name] = self._time(name, value)
        if self._ama is not None:
            flags = fields[self._ama].strip().upper()
            if flags in AMA_FLAGS:
                raw["amaflags"] = AMA_FLAGS[flags]
            elif not flags.isdigit():
                raise ValueError(f"bad amaflags: {fields[self._ama]!r}")
        try:
            row = cdr.normalize(raw, self.zone)
        except ValueError as exc:
            raise ValueError(f"bad value: {exc}") from None
        for name, size in COLUMN_SIZES.items():
            if len(row[name]) > size:
                raise ValueError(
                    f"too long: {name} has {len(row[name])} characters, the column holds {size}"
                )
        return row

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
        return moment


def split_fields(text: str, delimiter: str = ",") -> list[str]:
    """The fields of one CSV record (quotes doubled inside, newlines allowed in quotes)."""
    if '"' not in text:
        return text.split(delimiter)
    reader = csv.reader((text,), delimiter=delimiter, strict=True)
    fields = next(reader, [])
    if next(reader, None) is not None:  # pragma: no cover - the splitter prevents this
        raise csv.Error("more than one record")
    return fields
