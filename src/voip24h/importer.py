"""Master.csv (Asterisk ``cdr_csv``) to CDR rows: streamed, no database access here."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from voip24h import cdr
from voip24h.dates import gmt_to_local
from voip24h.records import as_datetime

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
# Asterisk writes amaflags as text in Master.csv and as a number in databases.
AMA_FLAGS = {"OMIT": 1, "BILLING": 2, "BILL": 2, "DOCUMENTATION": 3, "DEFAULT": 3, "": 0}


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

    def describe(self) -> str:
        flags = [
            name for name in ("loguniqueid", "loguserfield", "newcdrcolumns") if getattr(self, name)
        ]
        return f"{len(self.columns)} columns ({', '.join(flags) or 'default layout'})"


ALL_LAYOUTS = tuple(
    Layout(u, f, n) for u in (False, True) for f in (False, True) for n in (False, True)
)


def detect_layout(column_count: int) -> Layout:
    """The layout with this many columns; LayoutError when none or several fit."""
    fits = [layout for layout in ALL_LAYOUTS if len(layout.columns) == column_count]
    if not fits:
        raise LayoutError(
            f"a line has {column_count} columns; Master.csv has 16 to 21 "
            "(or give --columns for a cdr_custom file)"
        )
    if len(fits) > 1:
        options = " or ".join(
            "/".join(
                f"--{name}"
                for name in ("loguniqueid", "loguserfield", "newcdrcolumns")
                if getattr(layout, name)
            )
            for layout in fits
        )
        raise LayoutError(
            f"{column_count} columns could be {options}: say which with the cdr.conf flags"
        )
    return fits[0]


@dataclass(frozen=True)
class ParsedLine:
    """One CSV record of the file: a normalized row, or why it was rejected."""

    line: int
    row: dict[str, Any] | None
    error: str | None
    raw: list[str]


def parse_rows(
    lines: Iterable[str], columns: tuple[str, ...], zone: ZoneInfo, usegmtime: bool
) -> Iterator[ParsedLine]:
    """Parse CSV text into normalized ``cdr`` rows, one ParsedLine per CSV record."""
    reader = csv.reader(lines, strict=True)
    line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield ParsedLine(line, None, f"broken quoting: {exc}", [])
            line = reader.line_num + 1
            continue
        if fields:
            yield to_row(fields, columns, zone, usegmtime, line)
        line = reader.line_num + 1


def to_row(
    fields: list[str], columns: tuple[str, ...], zone: ZoneInfo, usegmtime: bool, line: int = 0
) -> ParsedLine:
    """One Master.csv record as a normalized ``cdr`` row (or the reason it is not one)."""
    if len(fields) != len(columns):
        return ParsedLine(line, None, f"expected {len(columns)} columns, got {len(fields)}", fields)
    raw: dict[str, Any] = dict(zip(columns, fields, strict=True))
    flags = raw.get("amaflags", "").strip().upper()
    if flags in AMA_FLAGS:
        raw["amaflags"] = AMA_FLAGS[flags]
    try:
        if usegmtime:
            for name in ("start", "answer", "end"):
                if raw.get(name):
                    raw[name] = gmt_to_local(as_datetime(raw[name]), zone)
        return ParsedLine(line, cdr.normalize(raw, zone), None, fields)
    except ValueError as exc:
        return ParsedLine(line, None, str(exc), fields)
