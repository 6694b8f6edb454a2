"""CSV records from a byte stream: quote-aware, bounded, resumable. No parsing of fields.

Asterisk writes one CDR per line, but a quoted field (``clid``) may hold a newline,
so a record ends at the first newline outside quotes. With ``""`` as the only
escape, a record is complete exactly when it holds an even number of ``"``.

A line whose quoting is broken must not swallow the lines after it, so a record
that stays open for longer than a real record could be (more fields than the
layout has, or more than ``max_record_bytes``) is cut back to its first line,
which is rejected, and the lines after it are read again on their own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

MAX_RECORD_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawRecord:
    """One record's bytes (without its final newline) and where it sits in the stream."""

    line: int
    data: bytes
    end: int
    error: str | None = None


class RecordSplitter:
    """Turns chunks of bytes into RawRecords; keeps an unfinished record until more arrives.

    ``offset``/``line`` always point just past the last record handed out, which is
    where a reader restarted from a checkpoint must continue.
    """

    def __init__(
        self,
        columns: int | None = None,
        *,
        delimiter: str = ",",
        offset: int = 0,
        line: int = 1,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ):
        self.columns = columns
        self.delimiter = delimiter
        self.offset = offset  # just past the last record handed out
        self.line = line  # line number of the next record
        self.max_record_bytes = max_record_bytes
        self._tail = b""  # bytes after the last newline seen
        self._open: list[tuple[bytes, int]] = []  # lines of a record whose quotes are still open
        self._open_bytes = 0
        self._at_start = offset == 0

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet handed out as records (a partial record)."""
        return len(self._tail) + self._open_bytes

    def feed(self, chunk: bytes) -> Iterator[RawRecord]:
        """Records completed by ``chunk`` (each ends with a newline outside quotes)."""
        if not chunk:
            return
        data = self._tail + chunk if self._tail else chunk
        if self._at_start:
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._tail = data
                return
            self._at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
                self.offset += len(_BOM)
        lines = data.split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if not self._open and (not line or line == b"\r"):
                self._skip(len(line) + 1)
            elif self._open or line.count(b'"') & 1:
                yield from self._line(line)
            else:  # _line's common case, without a generator per line
                yield self._emit(line, len(line) + 1, 1)

    def finish(self) -> Iterator[RawRecord]:
        """At the true end of the input: what is left, even without a final newline."""
        tail, self._tail = self._tail, b""
        if tail:
            yield from self._line(tail, newline=False)
        while self._open:
            yield from self._give_up()

    def _skip(self, size: int) -> None:
        """Step over a blank line: no record, no reject (a stray newline is not a CDR)."""
        self.offset += size
        self.line += 1

    def _line(self, line: bytes, newline: bool = True) -> Iterator[RawRecord]:
        size = len(line) + (1 if newline else 0)
        if not self._open:
            if not line or line == b"\r":
                self._skip(size)
                return
            if not line.count(b'"') & 1:
                yield self._emit(line, size, 1)
                return
            self._open = [(line, size)]
            self._open_bytes = size
            return
        self._open.append((line, size))
        self._open_bytes += size
        if not line.count(b'"') & 1:
            if self._too_big():
                yield from self._give_up()
            return
        record = b"\n".join(part for part, _ in self._open)
        lines, size = len(self._open), self._open_bytes
        self._open, self._open_bytes = [], 0
        yield self._emit(record, size, lines)

    def _emit(self, data: bytes, size: int, lines: int) -> RawRecord:
        self.offset += size
        first = self.line
        self.line += lines
        if data.endswith(b"\r"):
            data = data[:-1]
        return RawRecord(first, data, self.offset)

    def _too_big(self) -> bool:
        if self._open_bytes > self.max_record_bytes:
            return True
        if self.columns is None:
            return False
        # Close the open quote and count fields: more than a record has means broken.
        joined = b"\n".join(part for part, _ in self._open)
        text = joined.decode("utf-8", "replace") + '"'
        try:
            fields = next(csv.reader([text], delimiter=self.delimiter))
        except (csv.Error, StopIteration):
            return True
        return len(fields) > self.columns

    def _give_up(self) -> Iterator[RawRecord]:
        """Reject the first line of an open record; read the lines after it again."""
        (first, size), *rest = self._open
        self._open, self._open_bytes = [], 0
        record = self._emit(first, size, 1)
        record.error = "broken quoting: a quote is never closed"
        yield record
        for line, size in rest:
            yield from self._line(line, newline=size > len(line))
