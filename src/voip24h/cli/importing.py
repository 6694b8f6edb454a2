"""``voip24h import``: load Asterisk Master.csv / cdr_custom files, or follow a live one.

Exit codes (also in docs/ingestion.md):

* 0: every line was imported (or was already there);
* 1: the import finished, but some lines were rejected (see the rejects file);
* 2: nothing was imported: bad options, or a file's layout cannot be told;
* 3: the import stopped early (database error, a file unreadable to its end);
  batches committed so far are kept, and running the same command again finishes it;
* 4: the database's disk is full: batches committed so far are kept; free space (or
  raise the database's limit) and run the same command again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click
from click.core import ParameterSource

from voip24h.cli.common import (
    db_option,
    emit_json,
    engine_for,
    json_option,
    progress_options,
    require_database_file,
    settings_from,
)
from voip24h.ingest.files import FileImporter, ImportSummary, plan_files
from voip24h.ingest.layouts import Layout, LayoutError, custom_columns
from voip24h.ingest.loader import IndexOutOfDate, Loader, SchemaOutOfDate
from voip24h.ingest.progress import Mode, tracker
from voip24h.ingest.rejects import RejectsWriter

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_STOPPED, EXIT_FULL = 0, 1, 2, 3, 4
FULL = (
    "the database is out of space ({cause}); committed batches are kept: free space "
    "(or raise the database's size limit), then run the same command again"
)


def stopped(exc: BaseException) -> ImportFailure:
    """The one-line failure of an import, follow or sync stopped by a database error:
    exit 4 for a full disk, else 3 (db/faults.py tells them apart)."""
    from voip24h.db import faults

    if isinstance(exc, faults.DatabaseFull):
        return ImportFailure(FULL.format(cause=exc), EXIT_FULL)
    if faults.kind(exc) == "full":
        return ImportFailure(FULL.format(cause=faults.message(exc)), EXIT_FULL)
    return ImportFailure(
        f"database error: {faults.message(exc)}; committed batches are kept, run again to finish",
        EXIT_STOPPED,
    )


class ImportFailure(click.ClickException):
    """A one-line error with one of the documented exit codes."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.code = exit_code

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return self.code


@contextmanager
def import_bar(total_bytes: int, display: Mode) -> Iterator[Callable[..., None]]:
    """``update(bytes_done, rows_done[, doing])`` for FileImporter: bytes read of the
    total, rows, rows per second and the time left (progress.py).

    ``doing`` replaces the "importing" label (e.g. "building index ...").
    """
    with tracker("importing", display=display, total=total_bytes, unit="bytes") as update:

        def progress(done: int, rows: int, doing: str | None = None) -> None:
            update(done, rows=rows, label=doing or "importing")

        yield progress


def open_loader(ctx: click.Context, database_url: str | None) -> tuple[Loader, Any]:
    """The Loader on the configured database, checked ready to write, and the settings;
    ImportFailure with its exit code when the database is missing or out of date."""
    from sqlalchemy.exc import OperationalError

    settings = settings_from(ctx, database_url=database_url)
    try:
        require_database_file(settings)
    except click.ClickException as exc:
        raise ImportFailure(exc.message, EXIT_STOPPED) from None
    loader = Loader(engine_for(settings, bulk=True), settings)
    try:
        loader.check_ready()
    except (SchemaOutOfDate, IndexOutOfDate) as exc:
        raise ImportFailure(str(exc), EXIT_STOPPED) from None
    except OperationalError as exc:
        raise ImportFailure(f"database error: {exc.orig}", EXIT_STOPPED) from None
    return loader, settings


def _default_rejects() -> str:
    return f"voip24h-rejects-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"


NO_TENANT = (
    "{count:,} rows rang an extension with no tenant (no peeraccount, no accountcode): "
    "partners scoped by accountcode do not see them; see docs/operators.md#tenants"
)


def _report(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
        return
    line = (
        f"imported {summary.imported:,} rows, skipped {summary.duplicates:,} duplicates, "
        f"rejected {summary.rejected:,}"
    )
    if summary.rejected and summary.rejects_file:
        line += f" (listed in {summary.rejects_file})"
    click.echo(line)
    if summary.untenanted:
        click.echo(NO_TENANT.format(count=summary.untenanted))


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--loguniqueid", is_flag=True, help="Lines carry uniqueid (cdr.conf loguniqueid).")
@click.option("--loguserfield", is_flag=True, help="Lines carry userfield (cdr.conf loguserfield).")
@click.option(
    "--newcdrcolumns",
    is_flag=True,
    help="Lines end with peeraccount, linkedid, sequence (cdr.conf newcdrcolumns).",
)
@click.option("--usegmtime", is_flag=True, help="Times are GMT (cdr.conf usegmtime=yes).")
@click.option(
    "--columns",
    "columns_spec",
    metavar="NAMES",
    help="A cdr_custom file: its column names in order, e.g. clid,src,dst,start,... (- skips one).",
)
@click.option("--delimiter", default=",", show_default=True, help="Field separator.")
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False),
    help="File listing rejected lines [default voip24h-rejects-<time>.csv, made only if needed].",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=5000, show_default=True)
@click.option(
    "--defer-indexes/--keep-indexes",
    default=None,
    help="Build the read-side indexes once at the end instead of row by row "
    "[default: only when the cdr table is empty, i.e. an initial load].",
)
@click.option("--follow", is_flag=True, help="Keep reading FILE as Asterisk appends (tail -F).")
@click.option(
    "--poll-interval",
    type=click.FloatRange(0.05, 60),
    default=0.5,
    show_default=True,
    help="With --follow: seconds between looks at the file.",
)
@click.option(
    "--default-layout",
    is_flag=True,
    help="With --follow on a file with no lines yet: it has the 16 default columns.",
)
@progress_options
@db_option
@json_option
@click.pass_context
def import_cmd(
    ctx: click.Context,
    files: tuple[str, ...],
    loguniqueid: bool,
    loguserfield: bool,
    newcdrcolumns: bool,
    usegmtime: bool,
    columns_spec: str | None,
    delimiter: str,
    rejects_path: str | None,
    batch_size: int,
    defer_indexes: bool | None,
    follow: bool,
    poll_interval: float,
    default_layout: bool,
    display: Mode,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Import Asterisk Master.csv FILES (plain or gzip); a row already loaded is skipped.

    Without layout flags the layout is told from the column count where that is
    unambiguous (16, 18, 19, 21). Bad lines are listed in the rejects file with
    their line number and reason; every good line is imported. Exit codes: 0 all
    imported, 1 some lines rejected, 2 nothing imported (usage, layout), 3 stopped
    early (database, unreadable file; run again to finish), 4 the database's disk is full.
    """
    from sqlalchemy.exc import DBAPIError

    from voip24h.db.faults import DatabaseFull

    if as_json and ctx.get_parameter_source("progress") is not ParameterSource.COMMANDLINE:
        display = "off"  # the JSON summary alone, unless --progress is asked for
    if len(delimiter) != 1:
        raise ImportFailure("--delimiter must be one character", EXIT_USAGE)
    flags = Layout(loguniqueid, loguserfield, newcdrcolumns)
    try:
        columns = custom_columns(columns_spec) if columns_spec else None
        if columns and flags.flags():
            raise LayoutError("--columns replaces the layout flags: give one or the other")
        if follow and len(files) != 1:
            raise LayoutError("--follow takes exactly one FILE")
        if follow and defer_indexes:
            raise LayoutError("--defer-indexes is for loading files, not for --follow")
        if follow and _is_gzip(files[0]):
            raise LayoutError(f"{files[0]}: a gzip file does not grow; import it without --follow")
        plans = plan_files(
            files,
            flags if flags.flags() else None,
            columns,
            delimiter,
            default_layout=not follow or default_layout,
        )
    except LayoutError as exc:
        raise ImportFailure(str(exc), EXIT_USAGE) from None
    loader, settings = open_loader(ctx, database_url)
    rejects = RejectsWriter(rejects_path or _default_rejects())
    if follow:
        from voip24h.db import indexes
        from voip24h.ingest.follow import run_follow

        with rejects:
            try:
                indexes.restore(loader.engine)  # left deferred by an unfinished bulk import
                run_follow(
                    loader,
                    files[0],
                    plans[0].columns,
                    usegmtime=usegmtime,
                    delimiter=delimiter,
                    rejects=rejects,
                    poll_interval=poll_interval,
                    display=display,
                )
            except (DBAPIError, DatabaseFull, ValueError, OverflowError) as exc:
                raise stopped(exc) from None
        return
    total = sum(_size(path) for path in files)
    with rejects, import_bar(total, display) as update:
        importer = FileImporter(
            loader,
            settings.zone,
            usegmtime=usegmtime,
            delimiter=delimiter,
            rejects=rejects,
            batch_size=batch_size,
            progress=update,
            defer_indexes=defer_indexes,
        )
        try:
            summary = importer.run(plans)
        except KeyboardInterrupt:
            raise ImportFailure(
                "interrupted; committed batches are kept, run again to finish", EXIT_STOPPED
            ) from None
        except DBAPIError as exc:
            raise stopped(exc) from None
    _report(summary, as_json)
    if summary.error:
        raise ImportFailure(summary.error, EXIT_STOPPED)
    ctx.exit(EXIT_REJECTED if summary.rejected else EXIT_OK)


def _is_gzip(path: str) -> bool:
    from voip24h.ingest.source import GZIP_MAGIC

    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _size(path: str) -> int:
    import os

    return os.path.getsize(path)
