"""Large seed answers in bounded memory: rendered to a spooled file as read, then streamed.

A seed answer is all-or-nothing: more than ``max_records`` matches is refused with
``result_too_large``, never cut. So a large answer cannot be streamed straight from
the database (the refusal could come after the first bytes went out). Instead its
records are read chunk by chunk and rendered into a temporary file (kept in memory
up to a few MB), and only once the count is known to fit is the file sent, in
chunks. The bytes are exactly those ``protocol.render_records`` gives.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from voip24h import errors
from voip24h.wire import protocol

SPOOL_AFTER = 20_000  # records; smaller answers are built in memory as before
CHUNK_ROWS = 5_000  # rows read from the database at a time
MEMORY_BYTES = 4 * 1024 * 1024  # rendered bytes kept in memory before the file moves to disk
SEND_BYTES = 256 * 1024  # bytes per chunk sent


class SpooledRecords(Sequence[Sequence[Any]]):
    """A seed answer rendered to a spooled file; ``len()`` is its record count.

    It stands where a list of rows would (``results.Page.rows``), but its records are
    only read back as bytes, with ``body()``.
    """

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=MEMORY_BYTES)  # noqa: SIM115
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("a spooled answer is read as bytes, with body()")

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            if self._count:
                self._file.write(b",")
            self._file.write(protocol.render_record_items(rows))
            self._count += len(rows)

    def body(self) -> Iterator[bytes]:
        """The whole success envelope, in chunks; the file is closed at the end."""
        try:
            self._file.seek(0)
            yield protocol.RESPONSE_HEAD + b"["
            while chunk := self._file.read(SEND_BYTES):
                yield chunk
            yield b"]}"
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()


async def spool(chunks: AsyncIterator[Sequence[Sequence[Any]]], max_records: int) -> SpooledRecords:
    """Render every chunk; ResultTooLarge (and nothing kept) past ``max_records``."""
    answer = SpooledRecords()
    try:
        async for rows in chunks:
            answer.add(rows)
            if len(answer) > max_records:
                raise errors.ResultTooLarge(
                    f"More than {max_records} records match; narrow the date range or page "
                    "through the results."
                )
    except BaseException:
        answer.close()
        raise
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return answer
