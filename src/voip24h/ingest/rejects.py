"""The rejects file: every line an import could not load, with where it was and why.

A CSV file with the header ``file,line,reason,text``; ``text`` is the line as it
was in the input (bytes that are not UTF-8 shown as ``\\xNN``), so an operator
can fix the lines and import the rejects' ``text`` column again.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

HEADER = ("file", "line", "reason", "text")


class RejectsWriter:
    """Appends rejected lines to ``path``; the file is created on the first reject only."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.count = 0
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def write(self, source: str, line: int, reason: str, raw: bytes) -> None:
        """Record one rejected line (and count it, even without a file)."""
        self.count += 1
        if self.path is None:
            return
        if self._writer is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._handle = self.path.open("a", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            if new:
                self._writer.writerow(HEADER)
        self._writer.writerow((source, line, reason, raw.decode("utf-8", "backslashreplace")))

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._writer = None

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rejects(path: str | Path) -> list[dict[str, str]]:
    """The rows of a rejects file (for tests and tools); a rejected line may be huge."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
