"""``voip24h audit``: read and prune the audit trail of partner requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from sqlalchemy import Engine

from voip24h.cli.common import (
    database_errors,
    db_option,
    emit_json,
    existing_engine,
    json_option,
    require_database_file,
    settings_from,
)
from voip24h.config import Settings
from voip24h.db.engine import DatabaseUrlError
from voip24h.db.queries import audit as audit_queries
from voip24h.domain.partners import parse_duration
from voip24h.server.audit import audit_engine
from voip24h.service.answers import utcnow


def _since(text: str | None) -> datetime | None:
    """``1h``/``7d`` ago, or an ISO time (UTC)."""
    if text is None:
        return None
    try:
        return utcnow() - parse_duration(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=None)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (1h, 7d) nor an ISO time", param_hint="--since"
        ) from None


@click.group()
def audit() -> None:
    """The audit trail: every partner request, without secrets."""


@audit.command("list")
@click.option("--since", default="24h", show_default=True, help="Duration (1h, 7d) or ISO time.")
@click.option("--partner", default=None, help="Only this partner's requests.")
@click.option("--status", type=int, default=None, help="Only this HTTP status (e.g. 429).")
@click.option("--request-type", default=None, help="Only this requestType.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@db_option
@json_option
@click.pass_context
@database_errors
def list_cmd(
    ctx: click.Context,
    since: str,
    partner: str | None,
    status: int | None,
    request_type: str | None,
    limit: int,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Show audit entries, newest first."""
    settings = settings_from(ctx, database_url=database_url)
    with _engine(settings).connect() as conn:
        rows = audit_queries.find(
            conn,
            since=_since(since),
            partner=partner,
            status=status,
            request_type=request_type,
            limit=limit,
        )
    items = [_jsonable(row) for row in rows]
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("No audit entries match.")
        return
    for item in items:
        click.echo(
            f"{item['at']}  {item['status']:>3} {item['error_code'] or 'ok':<22} "
            f"{item['partner'] or '-':<16} {item['request_type'] or '-':<14} "
            f"rows={item['rows_returned']:<6} {item['latency_ms']:8.1f}ms "
            f"{item['client']:<15} {item['params']}"
        )


@audit.command("prune")
@click.option(
    "--older-than",
    default=None,
    metavar="DURATION",
    help="Delete entries older than this [default: audit_retention_days].",
)
@db_option
@json_option
@click.pass_context
@database_errors
def prune_cmd(
    ctx: click.Context, older_than: str | None, database_url: str | None, as_json: bool
) -> None:
    """Delete entries past the retention period."""
    settings = settings_from(ctx, database_url=database_url)
    try:
        age = (
            parse_duration(older_than)
            if older_than
            else timedelta(days=settings.audit_retention_days)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    before = utcnow() - age
    with _engine(settings).begin() as conn:
        removed = audit_queries.prune(conn, before)
    if as_json:
        emit_json({"deleted": removed, "before": before.isoformat() + "Z"})
    else:
        click.echo(f"deleted {removed:,} audit entries older than {before.isoformat()}Z")


def _engine(settings: Settings) -> Engine:
    """The audit trail's database (see ``audit_database_url``).

    ``--db`` may name the main database or, for SQLite, its ``FILE-audit.db`` itself.
    """
    url = settings.database_url
    if url.endswith("-audit.db") and not settings.audit_database_url:
        require_database_file(settings)  # the audit file itself: read it as it is
        settings = settings.replace(audit_database_url=url)
    else:
        existing_engine(settings).dispose()  # the main database must exist: nothing is created
    try:
        return audit_engine(settings)
    except DatabaseUrlError as exc:
        raise click.ClickException(str(exc)) from None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["at"] = row["at"].isoformat(timespec="milliseconds") + "Z"
    return out
