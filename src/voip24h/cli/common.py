"""What every voip24h subcommand shares: options, settings loading, output, errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voip24h.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

# SQLAlchemy is imported by the commands that open a database, not by `voip24h --help`.

db_option = click.option(
    "--db",
    "database_url",
    metavar="URL",
    default=None,
    help="Database URL [env VOIP24H_DATABASE_URL; default sqlite:///voip24h.db].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def progress_options(action: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress/--no-progress`` and ``--quiet``, passed on as ``display`` (progress.py)."""

    @functools.wraps(action)
    def wrapper(*args: Any, progress: bool | None, quiet: bool, **kwargs: Any) -> Any:
        from voip24h.ingest.progress import mode

        if quiet and progress:
            raise click.UsageError("--quiet and --progress contradict each other: give one")
        return action(*args, display=mode(progress, quiet), **kwargs)

    wrapper = click.option(
        "--quiet", is_flag=True, help="No progress display (the same as --no-progress)."
    )(wrapper)
    return click.option(
        "--progress/--no-progress",
        default=None,
        help="Progress on stderr: a bar on a terminal; --progress off a terminal prints a "
        "plain line every 10 s and at the end [default: a bar only on a terminal].",
    )(wrapper)


def settings_from(ctx: click.Context, **flags: Any) -> Settings:
    """Settings for this command: defaults <- --config file <- environment <- flags."""
    from voip24h.db.engine import DatabaseUrlError

    root = ctx.find_root()
    try:
        return load_settings(flags, config_file=(root.obj or {}).get("config"))
    except (SettingsError, DatabaseUrlError) as exc:
        raise click.ClickException(str(exc)) from None


def engine_for(settings: Settings, *, bulk: bool = False) -> Engine:
    """The engine of the configured database (``bulk``: tuned for an import)."""
    from voip24h.db.engine import DatabaseUrlError, make_engine

    try:
        return make_engine(settings.database_url, bulk=bulk)
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None


def require_database_file(settings: Settings) -> None:
    """Refuse, without creating it, a SQLite database file that does not exist yet."""
    from voip24h.db.engine import DatabaseUrlError, backend_of, sqlite_path

    url = settings.database_url
    try:
        backend = backend_of(url)
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None
    if backend != "sqlite":
        return
    path = sqlite_path(url)
    if path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
        raise click.ClickException(
            f"there is no database at {path} yet: run `voip24h db upgrade` to create it"
        )


def existing_engine(settings: Settings) -> Engine:
    """The engine of a database that exists and is at the newest schema, else a clear error
    (the same everywhere) and no file left behind."""
    from voip24h.db import migrate

    require_database_file(settings)
    engine = engine_for(settings)
    if not migrate.is_current(engine):
        raise click.ClickException(migrate.NOT_CURRENT)
    return engine


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def database_errors(action: Callable[..., Any]) -> Callable[..., Any]:
    """Turn database connection failures into a one-line error instead of a traceback."""

    @functools.wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import OperationalError

        try:
            return action(*args, **kwargs)
        except OperationalError as exc:
            raise click.ClickException(f"database error: {exc.orig}") from None

    return wrapper
