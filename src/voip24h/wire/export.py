"""Streamed exports: records as CSV or NDJSON, one database chunk at a time.

CSV follows RFC 4180 (quotes doubled, fields with commas, quotes or line breaks
quoted, CRLF line ends) after a header row of the field names. Text cells that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return) get a leading apostrophe, as OWASP advises: ``+84...``
becomes ``'+84...`` in the CSV. NDJSON is one JSON record per line, values as sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from voip24h.wire.protocol import RECORD_FIELDS, record_dict

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
_FORMULA_START = frozenset("=+-@\t\r")


def neutralise(value: Any) -> Any:
    """A text value made inert for spreadsheets; other values unchanged."""
    if value.__class__ is str and value[:1] in _FORMULA_START:
        return "'" + value
    return value


def _csv(lines: Any) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(lines)
    return buffer.getvalue().encode("utf-8")


def csv_header(fields: Sequence[str]) -> bytes:
    return _csv([[*RECORD_FIELDS, *fields]])


def csv_rows(rows: Sequence[Sequence[Any]], fields: Sequence[str]) -> bytes:
    """CSV lines of record rows (seed columns, then the extended fields).

    The same values as record_dict gives, written straight from the row (this is the
    hot loop of an export): hasRecording as true/false, numbers as numbers.
    """
    width = len(RECORD_FIELDS) + len(fields)
    flag = len(RECORD_FIELDS) + fields.index("hasRecording") if "hasRecording" in fields else -1
    trigger = _FORMULA_START
    lines = []
    for row in rows:
        cells = ["'" + v if v.__class__ is str and v[:1] in trigger else v for v in row[:width]]
        if flag >= 0:
            cells[flag] = "true" if row[flag] else "false"
        lines.append(cells)
    return _csv(lines)


def ndjson_rows(rows: Sequence[Sequence[Any]], fields: Sequence[str]) -> bytes:
    return b"".join(orjson.dumps(record_dict(row, fields)) + b"\n" for row in rows)


async def body(
    first: Sequence[Sequence[Any]] | None,
    chunks: AsyncIterator[Sequence[Sequence[Any]]],
    fields: tuple[str, ...],
    fmt: str,
) -> AsyncIterator[bytes]:
    """The export's bytes: the header (CSV), then each chunk as it is read.

    A database failure after the first chunk ends the stream without its final
    chunk, so the client sees a broken transfer, never a silently shorter file.
    """
    encode = csv_rows if fmt == "csv" else ndjson_rows
    try:
        if fmt == "csv":
            yield csv_header(fields)
        if first:
            yield encode(first, fields)
        async for chunk in chunks:
            yield encode(chunk, fields)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
