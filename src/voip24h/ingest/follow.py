"""``voip24h import --follow``: tail a live Master.csv like ``tail -F``, losing nothing.

* The first time, reading starts at the file's first line.
* Each batch of rows commits in the same transaction as the checkpoint (device,
  inode, byte offset, line number and a fingerprint of the file's first bytes),
  stored in the ``voip24h_meta`` table under ``follow:<hash of the path>``. So a
  restart continues exactly after the last committed line: none skipped, none
  twice (and a line read twice would be a duplicate row anyway, by its row key).
* A half-written last line is left alone until its newline arrives.
* Rotation by rename (``Master.csv`` -> ``Master.csv.1``, new ``Master.csv``): the
  old file is read to its end, then the new one from its first line. If the
  rotation happened while the follower was stopped, the old file is looked for
  in the same directory by its inode and finished first.
* Truncation (``copytruncate``, ``> Master.csv``): reading restarts at offset 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from voip24h.db import faults
from voip24h.db.queries import meta as meta_queries
from voip24h.ingest.csvstream import RawRecord, RecordSplitter
from voip24h.ingest.loader import Loader, LoadStats
from voip24h.ingest.progress import Mode, tracker
from voip24h.ingest.rejects import RejectsWriter
from voip24h.ingest.rows import RowParser

log = logging.getLogger(__name__)
HEAD_BYTES = 1024
READ_BYTES = 1 << 20


@dataclass
class Checkpoint:
    """Where following a file stopped: the next byte and line to read, and which file."""

    path: str
    dev: int
    inode: int
    offset: int
    line: int
    head: str

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) == (self.dev, self.inode)


def checkpoint_key(path: str) -> str:
    """The meta key of a followed file (its real path, hashed to fit the key column)."""
    real = os.path.realpath(path)
    return "follow:" + hashlib.sha256(real.encode()).hexdigest()[:40]


def head_digest(handle: IO[bytes], length: int) -> str:
    """Digest of the first ``length`` (at most HEAD_BYTES) bytes: tells a refilled file apart."""
    position = handle.tell()
    handle.seek(0)
    data = handle.read(min(length, HEAD_BYTES))
    handle.seek(position)
    return hashlib.sha256(data).hexdigest()[:32]


class Follower:
    """Reads a growing Master.csv into the database; call ``poll()`` repeatedly."""

    def __init__(
        self,
        loader: Loader,
        path: str,
        columns: tuple[str, ...],
        *,
        usegmtime: bool = False,
        delimiter: str = ",",
        rejects: RejectsWriter | None = None,
        batch_size: int = 5000,
    ):
        self.loader = loader
        self.path = path
        self.key = checkpoint_key(path)
        self.columns = columns
        self.delimiter = delimiter
        self.parser = RowParser(columns, loader.zone, usegmtime, delimiter)
        self.rejects = rejects or RejectsWriter(None)
        self.batch_size = batch_size
        self.stats = LoadStats()
        self.rejected = 0
        self._handle: IO[bytes] | None = None
        self._stat: os.stat_result | None = None
        self._splitter = RecordSplitter(len(columns), delimiter=delimiter)
        self._started = False
        self._head = ""  # digest of the followed file's first bytes, up to the offset
        self._last_size = -1

    # -- checkpoint -------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """The committed checkpoint of this file, if any."""
        with self.loader.engine.connect() as conn:
            value = meta_queries.get(conn, self.key)
        return Checkpoint(**json.loads(value)) if value else None

    def _current(self) -> Checkpoint:
        assert self._handle is not None and self._stat is not None
        offset = self._splitter.offset
        return Checkpoint(
            path=os.path.realpath(self.path),
            dev=self._stat.st_dev,
            inode=self._stat.st_ino,
            offset=offset,
            line=self._splitter.line,
            head=head_digest(self._handle, offset),
        )

    # -- opening ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the file where the committed checkpoint says (the first line the first time)."""
        self.close()
        self._started = True
        saved = self.checkpoint()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if saved is not None and (st is None or not saved.same_file(st)):
            self._finish_rotated(saved)
            saved = None
        if st is None:
            return  # not there yet: poll() opens it when it appears
        self._open(st, saved)

    def _open(self, st: os.stat_result, saved: Checkpoint | None) -> None:
        handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        st = os.fstat(handle.fileno())
        offset, line = 0, 1
        if saved is not None and saved.same_file(st) and st.st_size >= saved.offset:
            if head_digest(handle, saved.offset) == saved.head:
                offset, line = saved.offset, saved.line
            else:
                log.warning("%s was rewritten since the checkpoint: reading it again", self.path)
        elif saved is not None:
            log.warning("%s was truncated since the checkpoint: reading it again", self.path)
        handle.seek(offset)
        self._handle, self._stat = handle, st
        self._head, self._last_size = head_digest(handle, offset), st.st_size
        self._splitter = RecordSplitter(
            len(self.columns), delimiter=self.delimiter, offset=offset, line=line
        )

    def _finish_rotated(self, saved: Checkpoint) -> None:
        """Read the rest of a file rotated away while we were stopped, found by inode."""
        directory = Path(self.path).resolve().parent
        try:
            entries = list(os.scandir(directory))
        except OSError:
            entries = []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not saved.same_file(st) or not entry.is_file():
                continue
            with open(entry.path, "rb") as handle:
                if st.st_size < saved.offset or head_digest(handle, saved.offset) != saved.head:
                    break
                handle.seek(saved.offset)
                splitter = RecordSplitter(
                    len(self.columns),
                    delimiter=self.delimiter,
                    offset=saved.offset,
                    line=saved.line,
                )
                self._consume(handle, splitter, entry.path, final=True)
            return
        log.warning(
            "%s was rotated while stopped and the old file is gone: lines written to it "
            "after the checkpoint (line %d) cannot be read",
            self.path,
            saved.line,
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # -- reading ----------------------------------------------------------------------------

    def poll(self) -> int:
        """Read what was appended, follow rotation and truncation; return rows loaded."""
        if not self._started:
            self.start()
        before = self.stats.inserted + self.stats.duplicates + self.rejected
        if self._handle is None:
            try:
                self._open(os.stat(self.path), None)
            except FileNotFoundError:
                return 0
        assert self._handle is not None and self._stat is not None
        current = os.fstat(self._handle.fileno())
        if current.st_size < self._handle.tell() or self._replaced_in_place(current):
            # Truncated (copytruncate), perhaps refilled already: read it from the start.
            log.warning("%s was truncated: reading it from the start", self.path)
            self._reopen(current)
        self._consume(self._handle, self._splitter, self.path, final=False)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # renamed away, new file not created yet: keep reading the old one
        if st is not None and (st.st_dev, st.st_ino) != (self._stat.st_dev, self._stat.st_ino):
            # Rotated: finish the old file (a last write may have landed), then the new one.
            self._consume(self._handle, self._splitter, self.path, final=True)
            self._reopen(st)
            self._consume(self._handle, self._splitter, self.path, final=False)
        return self.stats.inserted + self.stats.duplicates + self.rejected - before

    def _reopen(self, st: os.stat_result) -> None:
        """Start over at the first line of the file now at the path."""
        self.close()
        self._open(st, None)
        self._save_position()

    def _replaced_in_place(self, st: os.stat_result) -> bool:
        """Whether the first bytes already read changed: truncated and written again."""
        assert self._handle is not None
        offset = self._splitter.offset
        if offset == 0 or st.st_size == self._last_size:
            return False
        self._last_size = st.st_size
        return head_digest(self._handle, offset) != self._head

    def _consume(
        self, handle: IO[bytes], splitter: RecordSplitter, name: str, *, final: bool
    ) -> None:
        """Load every complete record from the handle's position to its end, in batches."""
        rows: list[dict[str, Any]] = []
        origins: list[tuple[int, bytes]] = []
        pending = False
        while chunk := handle.read(READ_BYTES):
            for record in splitter.feed(chunk):
                pending = True
                self._take(record, rows, origins, name)
                if len(rows) >= self.batch_size:
                    self._commit(rows, origins, splitter, handle, name)
                    rows, origins, pending = [], [], False
        if final:
            for record in splitter.finish():
                pending = True
                self._take(record, rows, origins, name)
        if pending:
            self._commit(rows, origins, splitter, handle, name)

    def _take(
        self,
        record: RawRecord,
        rows: list[dict[str, Any]],
        origins: list[tuple[int, bytes]],
        name: str,
    ) -> None:
        parsed = self.parser.parse(record)
        if parsed.row is None:
            self.rejected += 1
            self.rejects.write(name, parsed.line, parsed.error or "rejected", parsed.raw)
        else:
            rows.append(parsed.row)
            origins.append((parsed.line, parsed.raw))

    def _commit(
        self,
        rows: list[dict[str, Any]],
        origins: list[tuple[int, bytes]],
        splitter: RecordSplitter,
        handle: IO[bytes],
        name: str,
    ) -> None:
        """Load a batch and move the checkpoint past it; rows the database refuses for
        their data are rejected (Loader.load_or_split), the others loaded."""
        st = os.fstat(handle.fileno())
        point = Checkpoint(
            path=os.path.realpath(self.path),
            dev=st.st_dev,
            inode=st.st_ino,
            offset=splitter.offset,
            line=splitter.line,
            head=head_digest(handle, splitter.offset),
        )
        self.rejects.flush()

        def save(conn: Any) -> None:
            meta_queries.put(conn, self.key, json.dumps(asdict(point)))

        loaded, refused = self.loader.load_or_split(self.loader.encode_batch(rows, origins), save)
        self.stats.add(loaded)
        for refusal in refused:
            self.rejected += 1
            self.rejects.write(name, refusal.line, refusal.reason, refusal.raw)
        self.rejects.flush()
        if handle is self._handle:
            self._head = point.head

    def _save_position(self) -> None:
        with self.loader.engine.begin() as conn:
            meta_queries.put(conn, self.key, json.dumps(asdict(self._current())))


def run_follow(
    loader: Loader,
    path: str,
    columns: tuple[str, ...],
    *,
    usegmtime: bool,
    delimiter: str,
    rejects: RejectsWriter,
    poll_interval: float,
    display: Mode = "off",
    max_seconds: float | None = None,
    batch_size: int = 5000,
) -> Follower:
    """Follow ``path`` until SIGINT/SIGTERM (or ``max_seconds``).

    An outage is retried from the committed checkpoint, with a backoff. Rows the
    database refuses for their data are rejected as they come (Loader.load_or_split).
    A full disk raises ``faults.DatabaseFull``: nothing after the checkpoint is lost,
    the next run reads it again. Any other data error is raised, never retried.
    """
    follower = Follower(
        loader,
        path,
        columns,
        usegmtime=usegmtime,
        delimiter=delimiter,
        rejects=rejects,
        batch_size=batch_size,
    )
    stop = {"now": False}

    def _stop(_signum: int, _frame: Any) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    backoff = poll_interval
    try:
        with tracker(f"following {path}", display=display, unit="new rows") as update:
            while not stop["now"] and (deadline is None or time.monotonic() < deadline):
                try:
                    follower.poll()
                    backoff = poll_interval
                except Exception as exc:
                    faults.retry_or_raise(exc)
                    log.warning(
                        "database error, retrying from the checkpoint: %s", faults.message(exc)
                    )
                    follower._started = False  # reopen at the committed checkpoint
                    backoff = min(backoff * 2, 30.0)
                stats = follower.stats
                update(stats.inserted, note=f"{follower.rejected:,} rejected")
                time.sleep(backoff)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        follower.close()
    return follower
