"""Reading an import file: plain or gzip, as records, in batches, parsed. Used by the
importing process and by its parsing workers alike."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any

from voip24h.ingest.csvstream import RawRecord, RecordSplitter
from voip24h.ingest.rows import RowParser

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
READ_ERRORS = (OSError, EOFError, zlib.error)


class ReadError(RuntimeError):
    """A file could not be read to its end (truncated gzip, I/O error)."""


class Source:
    """A file opened for streaming: gzip-compressed (by its magic bytes) or plain."""

    def __init__(self, path: str):
        self.path = path
        self.size = os.path.getsize(path)
        self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.compressed = self._raw.read(2) == GZIP_MAGIC
        self._raw.seek(0)
        self._stream: IO[bytes] = self._raw
        if self.compressed:
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]

    def position(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for gzip)."""
        return self._raw.tell()

    def chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        # read1: a truncated gzip gives every byte before the damage, then the error.
        read = getattr(self._stream, "read1", self._stream.read)
        try:
            while chunk := read(size):
                yield chunk
        except READ_ERRORS as exc:
            raise ReadError(f"{self.path}: cannot read to the end: {exc}") from exc

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def records(source: Source, splitter: RecordSplitter) -> Iterator[RawRecord]:
    """Every record of the source, the last one even without its final newline."""
    for chunk in source.chunks():
        yield from splitter.feed(chunk)
    yield from splitter.finish()


Rejected = list[tuple[int, str, bytes]]  # (line, reason, raw bytes)


def record_batches(raw: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    """The records in lists of ``size`` (the last may be shorter): an import's batches.

    A ReadError is raised after the list of the records read before it.
    """
    batch: list[RawRecord] = []
    try:
        for record in raw:
            batch.append(record)
            if len(batch) == size:
                yield batch
                batch = []
    except ReadError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def parse_batch(
    parser: RowParser, batch: list[RawRecord]
) -> tuple[list[dict[str, Any]], Rejected, list[tuple[int, bytes]]]:
    """The good rows of a batch of records, the rejected ones with their reasons, and
    where each good row came from (line, raw bytes), parallel to the rows."""
    rows: list[dict[str, Any]] = []
    rejected: Rejected = []
    origins: list[tuple[int, bytes]] = []
    for record in batch:
        parsed = parser.parse(record)
        if parsed.row is None:
            rejected.append((parsed.line, parsed.error or "rejected", parsed.raw))
        else:
            rows.append(parsed.row)
            origins.append((parsed.line, parsed.raw))
    return rows, rejected, origins
