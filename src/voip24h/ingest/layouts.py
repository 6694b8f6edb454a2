"""Master.csv (Asterisk ``cdr_csv``) and ``cdr_custom`` column layouts. Pure, no I/O.

Column order is Asterisk's (cdr/cdr_csv.c ``build_csv_record``): the 16 default
columns, then ``uniqueid`` (loguniqueid), ``userfield`` (loguserfield), then
``peeraccount``, ``linkedid``, ``sequence`` (newcdrcolumns). Strings are quoted
with ``""`` inside, integers bare, an unset time (``answer`` of an unanswered
call) is an empty field.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import String

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
