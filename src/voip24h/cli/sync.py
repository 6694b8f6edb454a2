"""``voip24h sync``: keep the server's records in step with a PBX's own CDR table.

Exit codes: 0 done (``--once``) or stopped by a signal; 1 ``--once`` finished but
some rows were rejected; 2 bad options or no usable source table; 3 ``--once``
could not reach a database.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
from datetime import datetime, timedelta
from typing import Any

import click

from voip24h.cli.common import db_option, emit_json, json_option
from voip24h.cli.importing import (
    EXIT_REJECTED,
    EXIT_USAGE,
    NO_TENANT,
    ImportFailure,
    open_loader,
    stopped,
)
from voip24h.ingest.progress import Mode
from voip24h.ingest.rejects import RejectsWriter

_DURATION = re.compile(r"([0-9]+)\s*([smhd]?)", re.ASCII)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30m``, ``6h``, ``2d`` as a timedelta."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 6h or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_aliases(values: tuple[str, ...]) -> dict[str, str]:
    aliases = {}
    for value in values:
        source, sep, target = value.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise click.BadParameter(f"{value!r}: give SOURCE_COLUMN=CDR_COLUMN")
        aliases[source.strip()] = target.strip()
    return aliases


@click.command("sync")
@click.option(
    "--source",
    "source_url",
    required=True,
    envvar="VOIP24H_SYNC_SOURCE",
    metavar="URL",
    help="The PBX database: mysql://USER:PASS@HOST/asteriskcdrdb or postgresql://... "
    "[env VOIP24H_SYNC_SOURCE, which keeps the password out of `ps`].",
)
@click.option("--table", "table_name", default="cdr", show_default=True, help="Source table.")
@click.option(
    "--lookback",
    default="6h",
    show_default=True,
    help="How far before the newest call to look for late-written rows (the longest call).",
)
@click.option("--interval", type=click.FloatRange(0.1, 60), default=1.0, show_default=True)
@click.option("--once", is_flag=True, help="Copy what is there now, then exit.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"]),
    help="With --once: copy every row from this time on (a sweep), whatever was copied before.",
)
@click.option(
    "--alias",
    "alias_values",
    multiple=True,
    metavar="SRC=COLUMN",
    help="A source column that is a cdr column under another name (repeatable).",
)
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), help="Rejects file.")
@click.option("--quiet", is_flag=True, help="No progress bar and no progress messages.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress of the catch-up on stderr: a bar on a terminal; --progress off a "
    "terminal prints a plain line every 10 s [default: a bar only on a terminal].",
)
@db_option
@json_option
@click.pass_context
def sync_cmd(
    ctx: click.Context,
    source_url: str,
    table_name: str,
    lookback: str,
    interval: float,
    once: bool,
    since: datetime | None,
    alias_values: tuple[str, ...],
    rejects_path: str | None,
    quiet: bool,
    progress: bool | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Copy new rows of a PBX's CDR table (FreePBX asteriskcdrdb.cdr, cdr_adaptive_odbc)
    into the server, read-only, within seconds; runs until stopped (or --once).

    The source needs only SELECT on the table (see docs/ingestion.md for the GRANT).
    """
    from sqlalchemy.exc import DBAPIError

    from voip24h.db.engine import DatabaseUrlError
    from voip24h.db.queries.source_cdr import SourceTableError
    from voip24h.ingest.progress import mode
    from voip24h.ingest.sync import Syncer

    if quiet and progress:
        raise ImportFailure("--quiet and --progress contradict each other: give one", EXIT_USAGE)
    display = mode(progress, quiet)
    if as_json and progress is None:
        display = "off"  # the JSON summary alone, unless --progress is asked for
    if since is not None and not once:
        raise ImportFailure("--since goes with --once", EXIT_USAGE)
    try:
        window = parse_duration(lookback)
        aliases = parse_aliases(alias_values)
    except click.BadParameter as exc:
        raise ImportFailure(exc.format_message(), EXIT_USAGE) from None
    loader, _settings = open_loader(ctx, database_url)
    from voip24h.db import indexes

    indexes.restore(loader.engine)  # left deferred by an unfinished bulk import
    rejects = RejectsWriter(rejects_path)
    try:
        syncer = Syncer(
            loader, source_url, table_name, lookback=window, aliases=aliases, rejects=rejects
        )
    except (ValueError, DatabaseUrlError) as exc:
        raise ImportFailure(f"--source: {exc}", EXIT_USAGE) from None
    try:
        if once:
            try:
                _catch_up(syncer, since, display)
            except SourceTableError as exc:
                raise ImportFailure(str(exc), EXIT_USAGE) from None
            except DBAPIError as exc:
                raise stopped(exc) from None
            _report(syncer.stats.as_dict(), as_json)
            ctx.exit(EXIT_REJECTED if syncer.stats.rejected else 0)
        _run_forever(syncer, interval, quiet or progress is False, display)
        _report(syncer.stats.as_dict(), as_json)
    finally:
        syncer.close()
        rejects.close()


def _catch_up(syncer: Any, since: datetime | None, display: Mode) -> None:
    """The first copy (or ``--since``'s), with rows read of the total and the time left."""
    from contextlib import ExitStack

    from voip24h.ingest.progress import tracker

    with ExitStack() as stack:
        shown: list[Any] = []

        def progress(read: int, total: int | None) -> None:
            if not shown:  # the bar is drawn once the total is known (its first call)
                shown.append(stack.enter_context(tracker("syncing", display=display, total=total)))
            shown[0](read)

        syncer.catch_up(since, progress=progress if display != "off" else None)


def _run_forever(syncer: Any, interval: float, quiet: bool, display: Mode) -> None:
    from sqlalchemy.exc import DBAPIError

    from voip24h.db.faults import DatabaseFull
    from voip24h.db.queries.source_cdr import SourceTableError

    stop = {"now": False}

    def _stop(_signum: int, _frame: Any) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shown = {"copied": -1}

    def on_poll(stats: Any) -> None:
        if not quiet and stats.copied != shown["copied"]:
            shown["copied"] = stats.copied
            click.echo(f"sync: {stats.copied:,} rows copied, newest {stats.newest}", err=True)

    try:
        if display != "off":
            # A database error here is left to run() below: it reports it, waits and
            # reads the window again.
            with contextlib.suppress(DBAPIError):
                _catch_up(syncer, None, display)
        syncer.run(interval, should_stop=lambda: stop["now"], on_poll=on_poll)
    except SourceTableError as exc:
        raise ImportFailure(str(exc), EXIT_USAGE) from None
    except (DBAPIError, DatabaseFull, ValueError, OverflowError) as exc:
        raise stopped(exc) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"copied {summary['copied']:,} rows, skipped {summary['duplicates']:,} duplicates, "
            f"rejected {summary['rejected']:,}; newest call {summary['newest'] or 'none'}"
        )
        if summary.get("untenanted"):
            click.echo(NO_TENANT.format(count=summary["untenanted"]))
