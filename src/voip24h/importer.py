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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
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
    if ("start" in used) == ("calldate" in used):
        raise LayoutError("the columns must include start (or calldate), once")
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
                out[name] = int(value)
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
                out["amaflags"] = int(flags)
            else:
                raise ValueError(f"bad amaflags: {value!r}")
        if out["calldate"] is None:
            raise ValueError("bad date: start is empty")
        key = out["row_key"] = cdr.row_key(out)
        if not out["uniqueid"]:
            out["uniqueid"] = cdr.synthetic_uniqueid(out["calldate"], key, self.zone)
        return out

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
