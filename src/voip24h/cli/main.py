"""The ``voip24h`` command: serve, demo, import, db and partner administration."""

from __future__ import annotations

import importlib
from typing import Any

import click

from voip24h.cli.common import (
    database_errors,
    db_option,
    emit_json,
    engine_for,
    json_option,
    progress_options,
    require_database_file,
    settings_from,
)
from voip24h.cli.serving import run_server
from voip24h.config import Settings
from voip24h.ingest.progress import Mode

# Subcommands in modules of their own, imported only when run (or listed): `voip24h
# import` need not load the HTTP client, the audit reader or the demo generator.
LAZY_COMMANDS = {
    "audit": "voip24h.cli.audit:audit",
    "demo": "voip24h.cli.demo:demo",
    "deliver": "voip24h.cli.webhook:deliver",
    "import": "voip24h.cli.importing:import_cmd",
    "partner": "voip24h.cli.partner:partner",
    "pbx": "voip24h.cli.pbx:pbx",
    "query": "voip24h.cli.query:query",
    "sync": "voip24h.cli.sync:sync_cmd",
    "webhook": "voip24h.cli.webhook:webhook",
}


# Their one-line help, so that `voip24h --help` lists them without importing them (a test
# holds each equal to the command's own short help).
LAZY_SHORT_HELP = {
    "audit": "The audit trail: every partner request, without secrets.",
    "demo": "Create a demo database with realistic CDRs, add two partners, print their "
    "secrets, serve.",
    "deliver": "Deliver webhooks, without serving the API (one process holds the lease at a time).",
    "import": "Import Asterisk Master.csv FILES (plain or gzip); a row already loaded is skipped.",
    "partner": "Manage partners, their scopes and their secrets.",
    "pbx": "Run the live link to the PBX (AMI): call events into the outbox, until stopped.",
    "query": "Ask a voip24h server for call records, as a partner does.",
    "sync": "Copy new rows of a PBX's CDR table (FreePBX asteriskcdrdb.cdr, "
    "cdr_adaptive_odbc) into the server, read-only, within seconds; runs until stopped "
    "(or --once).",
    "webhook": "Manage partners' webhook endpoints and see their delivery attempts.",
}


class LazyGroup(click.Group):
    """A click group whose LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            limit = formatter.width - 6 - len(name)
            if command is None and name in LAZY_SHORT_HELP:
                stand_in = click.Command(name, help=LAZY_SHORT_HELP[name])  # click's own shortening
                rows.append((name, stand_in.get_short_help_str(limit)))
                continue
            command = command or self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="VOIP24H_CONFIG",
    help="TOML settings file [env VOIP24H_CONFIG].",
)
@click.version_option(package_name="voip24h")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """voip24h: the partner API server for Asterisk/FreePBX call records.

    Every setting can also be given as a VOIP24H_* environment variable or in
    a TOML file (--config); `voip24h settings` lists them.
    """
    ctx.obj = {"config": config}


@cli.command()
@db_option
@click.option("--host", default=None, help="Listen address [default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Listen port [default 8024].")
@click.option("--workers", type=int, default=None, help="Worker processes [default 1].")
@click.pass_context
def serve(ctx: click.Context, **flags: Any) -> None:
    """Run the partner API server.

    With ami_url set, a server also runs the live link to the PBX (one process per
    database holds it, like `voip24h pbx`), in a child process unless pbx_link_process
    is false.
    """
    from voip24h.cli.pbx import check_ami_url

    settings = settings_from(ctx, **flags)
    check_ami_url(settings)
    _check_schema(settings)
    from voip24h.cli.link_child import serve_with_link

    serve_with_link(settings, run_server)  # the PBX link in a child process (issue 21)


def _check_schema(settings: Settings) -> None:
    from sqlalchemy.exc import OperationalError

    from voip24h.db import migrate

    require_database_file(settings)
    engine = engine_for(settings)
    try:
        if not migrate.is_current(engine):
            raise click.ClickException(migrate.NOT_CURRENT)
        _restore_indexes_or_warn(engine, settings)
    except OperationalError as exc:
        # A server database that is down now may be up later: serve 503s meanwhile.
        if settings.database_url.startswith("sqlite"):
            raise click.ClickException(f"database error: {exc.orig}") from None
        click.echo(
            f"warning: database not reachable yet ({exc.orig}); serving 503 until it is", err=True
        )
    finally:
        engine.dispose()


@cli.command("settings")
@json_option
def settings_cmd(as_json: bool) -> None:
    """List every setting with its environment variable, default and meaning."""
    from voip24h.config import describe

    rows = describe()
    if as_json:
        emit_json([{"name": n, "env": e, "default": d, "help": h} for n, e, d, h in rows])
        return
    for name, env, default, help_text in rows:
        click.echo(f"{name} ({env}, default {default!r})\n    {help_text}")


@cli.group()
def db() -> None:
    """Create, upgrade and rebuild the database."""


@db.command()
@db_option
@progress_options
@click.pass_context
@database_errors
def upgrade(ctx: click.Context, database_url: str | None, display: Mode) -> None:
    """Create the schema or bring it to the newest version.

    Rows stored by an older version get their conversation (callid) in batches, and
    their call records are rebuilt; killed mid-way, it goes on where it stopped.
    """
    from voip24h.db import migrate

    settings = settings_from(ctx, database_url=database_url)
    engine = engine_for(settings)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    if before == after:
        click.echo(f"schema is current (revision {after})")
    else:
        click.echo(f"schema upgraded from {before or 'empty'} to revision {after}")
    _restore_indexes(engine)
    _rebuild_records(engine, settings, display)


def _rebuild_records(engine: Any, settings: Settings, display: Mode) -> None:
    """Fill the callids of rows from before 0009, then rebuild records built by older rules."""
    from voip24h.db.queries import cdr as cdr_queries
    from voip24h.ingest import rebuild
    from voip24h.ingest.loader import IndexOutOfDate, Loader
    from voip24h.ingest.progress import tracker

    total = rebuild.pending(engine)
    if total:
        with tracker("conversations", display=display, total=total) as update:
            filled = rebuild.fill_callids(engine, settings.zone, progress=update)
        click.echo(f"conversations: {filled:,} rows given their callid")
    loader = Loader(engine, settings)
    try:
        loader.check_ready()
    except IndexOutOfDate:
        with engine.connect() as conn:
            rows = cdr_queries.count(conn)
        with tracker("reindexing", display=display, total=rows) as update:
            written = loader.reindex(progress=lambda done, records: update(done))
        click.echo(f"reindexed: {written:,} call records (built with older rules or settings)")


def _restore_indexes(engine: Any) -> None:
    """Build the read-side indexes an unfinished bulk import left out (db/indexes.py)."""
    from voip24h.db import indexes

    def note(name: str) -> None:
        click.echo(f"building index {name} (an import that deferred it did not finish)", err=True)

    indexes.restore(engine, note)


DEFERRED_INDEXES = (
    "the read-side indexes an import deferred could not be built ({cause}); serving "
    "anyway: reads are right but slower (full scans). Free space if the disk is full, "
    "then run `voip24h db upgrade` to build them"
)


def _restore_indexes_or_warn(engine: Any, settings: Settings) -> None:
    """Build deferred indexes before serving; if that fails (a full disk), log once what
    to run and serve without them: deferred work is never fatal."""
    import logging

    from sqlalchemy.exc import DBAPIError

    from voip24h.db import faults
    from voip24h.server.observability import configure_logging

    try:
        _restore_indexes(engine)
    except DBAPIError as exc:
        configure_logging(settings.log_level)
        message = DEFERRED_INDEXES.format(cause=faults.message(exc))
        logging.getLogger("voip24h.serve").warning(message)


@db.command()
@db_option
@progress_options
@click.pass_context
@database_errors
def reindex(ctx: click.Context, database_url: str | None, display: Mode) -> None:
    """Rebuild the call records from the cdr table (after changing mapping settings).

    On a terminal a bar shows the cdr rows done of their total and the time left.
    """
    from voip24h.db import migrate
    from voip24h.db.queries import cdr as cdr_queries
    from voip24h.ingest.loader import Loader
    from voip24h.ingest.progress import tracker

    settings = settings_from(ctx, database_url=database_url)
    require_database_file(settings)
    loader = Loader(engine_for(settings), settings)
    if not migrate.is_current(loader.engine):
        raise click.ClickException(migrate.NOT_CURRENT)
    total = None
    if display != "off":  # one count (an index scan) for the bar's total and time left
        with loader.engine.connect() as conn:
            total = cdr_queries.count(conn)
    with tracker("reindexing", display=display, total=total) as update:
        written = loader.reindex(progress=lambda rows, records: update(rows))
    click.echo(f"reindexed: {written:,} call records")


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="voip24h")


if __name__ == "__main__":  # pragma: no cover
    main()
