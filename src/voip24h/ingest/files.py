"""Importing CDR files: open them (plain or gzip), pick the layout, stream rows into the Loader.

Memory stays flat: bytes are read in chunks, each record is decoded on its own
(so invalid UTF-8 rejects just that record), and rows go to the database in
batches that each commit atomically. Because every row has a key (cdr.row_key),
a batch that was committed before a crash is simply skipped as duplicates when
the import runs again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from voip24h.db import indexes
from voip24h.ingest.csvstream import RawRecord, RecordSplitter
from voip24h.ingest.layouts import Layout, LayoutError, layout_from_counts
from voip24h.ingest.loader import EncodedBatch, Loader, LoadStats
from voip24h.ingest.rejects import RejectsWriter
from voip24h.ingest.rows import RowParser, split_fields
from voip24h.ingest.source import (
    READ_ERRORS,
    ReadError,
    Rejected,
    Source,
    parse_batch,
    record_batches,
    records,
)
from voip24h.ingest.workers import Job, WorkerFailed, default_workers, parsed_batches

SNIFF_RECORDS = 50
PIPELINE_MIN_BYTES = 1 << 20  # smaller files are parsed in-process (no worker to start)
# An import into an empty table refreshes the planner's statistics after this many
# batches (PostgreSQL, MariaDB): planned as empty, its lookups scanned the table, and
# the first 100k rows took 146 s instead of 12 s.
ANALYZE_AFTER_BATCHES = 2


def sniff_layout(path: str, delimiter: str = ",", *, required: bool = False) -> Layout:
    """The Master.csv layout of a file, from the column count of its first records.

    An empty file has the default layout, unless ``required`` (following a file
    that has no line yet: its layout cannot be told, so it must be given).
    """
    counts: list[int] = []
    with Source(path) as source:
        try:
            for record in records(source, RecordSplitter(delimiter=delimiter)):
                if record.error:
                    continue
                try:
                    text = record.data.decode("utf-8", "replace")
                    counts.append(len(split_fields(text, delimiter)))
                except Exception:  # noqa: S112 - a broken line says nothing about the layout
                    continue
                if len(counts) >= SNIFF_RECORDS:
                    break
        except ReadError:
            pass  # the import itself reports it, after loading what can be read
    if required and not counts:
        raise LayoutError(
            "has no complete line yet to tell its layout from: give the cdr.conf flags "
            "(--loguniqueid, --loguserfield, --newcdrcolumns; none for the 16-column default)"
        )
    return layout_from_counts(counts)


@dataclass
class Plan:
    """One file to import and how to read it."""

    path: str
    columns: tuple[str, ...]
    layout: str


def plan_files(
    paths: tuple[str, ...] | list[str],
    layout: Layout | None,
    columns: tuple[str, ...] | None,
    delimiter: str = ",",
    *,
    default_layout: bool = True,
) -> list[Plan]:
    """A Plan per file; LayoutError (naming the file) before anything is imported.

    ``default_layout=False``: a file without lines is refused rather than given
    the 16-column default (for --follow, where lines come later).
    """
    plans = []
    for path in paths:
        if columns is not None:
            plans.append(Plan(path, columns, f"cdr_custom, {len(columns)} columns"))
            continue
        try:
            chosen = layout or sniff_layout(path, delimiter, required=not default_layout)
        except LayoutError as exc:
            raise LayoutError(f"{path}: {exc}") from None
        except READ_ERRORS as exc:
            raise LayoutError(f"{path}: cannot read: {exc}") from None
        plans.append(Plan(path, chosen.columns, chosen.describe()))
    return plans


@dataclass
class ImportSummary:
    """What an import did; ``as_dict`` is the ``--json`` output."""

    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    records: int = 0
    untenanted: int = 0
    bytes: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    rejects_file: str | None = None
    error: str | None = None

    @property
    def rows(self) -> int:
        return self.imported + self.duplicates + self.rejected

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[..., None]  # (bytes done, rows done[, what is being done])


class FileImporter:
    """Streams planned files into the database through a Loader, batch by batch."""

    def __init__(
        self,
        loader: Loader,
        zone: ZoneInfo,
        *,
        usegmtime: bool = False,
        delimiter: str = ",",
        rejects: RejectsWriter | None = None,
        batch_size: int = 5000,
        progress: Progress | None = None,
        pipeline: bool | None = None,
        defer_indexes: bool | None = None,
        workers: int | None = None,
    ):
        """``pipeline``: parse in ``workers`` processes while this one writes (None: for
        files of at least PIPELINE_MIN_BYTES, where ``fork`` is available).
        ``defer_indexes``: build the read-side indexes at the end (db/indexes.py; None:
        when the ``cdr`` table is empty, or an earlier import left them deferred)."""
        self.loader = loader
        self.pipeline = pipeline
        self.defer_indexes = defer_indexes
        self.workers = workers or default_workers()
        self.zone = zone
        self.usegmtime = usegmtime
        self.delimiter = delimiter
        self.rejects = rejects or RejectsWriter(None)
        self.batch_size = batch_size
        self.progress = progress
        self._error: str | None = None

    def run(self, plans: list[Plan]) -> ImportSummary:
        """Import every planned file; a ReadError stops at the file that raised it."""
        summary = ImportSummary()
        done_bytes = 0
        engine = self.loader.engine
        loaded_batches = 0
        fresh = engine.dialect.name != "sqlite" and indexes.cdr_is_empty(engine)
        deferring = self._defer_indexes()
        for plan in plans:
            stats, rejected = LoadStats(), 0
            try:
                source = Source(plan.path)
            except OSError as exc:
                summary.error = f"{plan.path}: cannot read: {exc.strerror or exc}"
                break
            with source:
                before = self.rejects.count
                parser = RowParser(plan.columns, self.zone, self.usegmtime, self.delimiter)
                splitter = RecordSplitter(len(plan.columns), delimiter=self.delimiter)
                self._error = None
                try:
                    if self._pipelined(source):
                        batches = self._worker_batches(plan)
                    else:
                        raw = records(source, splitter)
                        batches = (
                            (self.loader.encode_batch(rows, origins), bad, source.position)
                            for rows, origins, bad in self._row_batches(raw, parser)
                        )
                    for batch, bad, position in batches:
                        if batch.rows:
                            loaded, refused = self.loader.load_or_split(batch)
                            stats.add(loaded)
                            loaded_batches += 1
                            if fresh and loaded_batches == ANALYZE_AFTER_BATCHES:
                                indexes.analyze(engine, early=True)
                            bad = bad + [(r.line, r.reason, r.raw) for r in refused]
                            bad.sort(key=lambda reject: reject[0])  # in line order
                        for line, reason, data in bad:
                            self.rejects.write(plan.path, line, reason, data)
                        if self.progress:
                            rows_done = summary.rows + stats.inserted + stats.duplicates
                            rows_done += self.rejects.count - before
                            self.progress(done_bytes + position(), rows_done)
                finally:
                    self.rejects.flush()
                summary.error = self._error
                rejected = self.rejects.count - before
                done_bytes += source.size
            summary.imported += stats.inserted
            summary.duplicates += stats.duplicates
            summary.records += stats.records
            summary.untenanted += stats.untenanted
            summary.rejected += rejected
            summary.bytes = done_bytes
            summary.files.append(
                {
                    "file": plan.path,
                    "layout": plan.layout,
                    "imported": stats.inserted,
                    "duplicates": stats.duplicates,
                    "rejected": rejected,
                }
            )
            if self.progress:
                self.progress(done_bytes, summary.rows)
            if summary.error:
                break
        if deferring:
            self._build_indexes(done_bytes, summary.rows)
        if summary.rejected and self.rejects.path is not None:
            summary.rejects_file = str(self.rejects.path)
        return summary

    def _defer_indexes(self) -> bool:
        """Drop the read-side indexes for a bulk load, when that is the plan."""
        engine = self.loader.engine
        already = indexes.is_deferred(engine)
        wanted = self.defer_indexes
        if wanted is None:
            wanted = already or indexes.cdr_is_empty(engine)
        if not wanted:
            if already:  # an earlier bulk load was cut short: complete it first
                indexes.restore(engine)
            return False
        if not already:
            indexes.defer(engine)
        with engine.connect() as conn:
            self.loader.keys_indexed = indexes.keys_indexed(conn)
        return True

    def _build_indexes(self, done_bytes: int, rows: int) -> None:
        def note(name: str) -> None:
            if self.progress:
                self.progress(done_bytes, rows, f"building index {name}")

        indexes.restore(self.loader.engine, note)
        self.loader.keys_indexed = None

    def _pipelined(self, source: Source) -> bool:
        if "fork" not in multiprocessing.get_all_start_methods():
            return False
        if self.pipeline is None:
            return source.size >= PIPELINE_MIN_BYTES
        return self.pipeline

    def _worker_batches(
        self, plan: Plan
    ) -> Iterator[tuple[EncodedBatch, Rejected, Callable[[], int]]]:
        """Batches parsed, mapped and encoded by worker processes (workers.py), in file
        order, each with its rejected lines (written once the batch is loaded)."""
        job = Job(
            plan.path,
            plan.columns,
            self.zone,
            self.usegmtime,
            self.delimiter,
            self.batch_size,
            self.loader.encode_batch,
        )
        try:
            for batch, rejected, position in parsed_batches(job, self.workers):
                yield batch, rejected, _constant(position)
        except ReadError as exc:
            self._error = str(exc)
        except WorkerFailed as exc:
            raise RuntimeError(f"{plan.path}: {exc}") from None

    def _row_batches(
        self, raw: Iterator[RawRecord], parser: RowParser
    ) -> Iterator[tuple[list[dict[str, Any]], list[tuple[int, bytes]], Rejected]]:
        """The good rows of each ``batch_size`` records (as the workers cut batches), their
        lines, and the rejected records; a ReadError ends the batches (kept)."""
        try:
            for batch in record_batches(raw, self.batch_size):
                rows, rejected, origins = parse_batch(parser, batch)
                yield rows, origins, rejected
        except ReadError as exc:
            self._error = str(exc)


def _constant(value: int) -> Callable[[], int]:
    return lambda: value
