"""``voip24h partner``: add, list, show, rotate and revoke partners and their secrets."""

from __future__ import annotations

import sys
from typing import Any

import click

from voip24h.cli.common import (
    database_errors,
    db_option,
    emit_json,
    existing_engine,
    json_option,
    settings_from,
)
from voip24h.domain.mapping import ExtensionMatcher
from voip24h.domain.partners import parse_duration
from voip24h.service import partner_admin


def _admin(action: Any, *args: Any) -> Any:
    try:
        return action(*args)
    except partner_admin.PartnerError as exc:
        raise click.ClickException(str(exc)) from None


def _issued(issued: partner_admin.Issued, as_json: bool, what: str) -> None:
    if as_json:
        emit_json({"name": issued.name, "secret": issued.secret})
        return
    click.echo(f"{what} for partner {issued.name!r}. Its secret, shown only this once:\n")
    click.echo(f"    {issued.secret}\n")
    click.echo("Give it to the partner over a safe channel; only its hash is stored.")


@click.group()
def partner() -> None:
    """Manage partners, their scopes and their secrets."""


@partner.command("add")
@click.argument("name")
@click.option(
    "--accountcode",
    "accountcodes",
    multiple=True,
    metavar="CODE",
    help="A tenant (CDR accountcode) the partner may see; repeat for several.",
)
@click.option(
    "--extensions",
    multiple=True,
    metavar="LIST",
    help="Extensions the partner may see, e.g. 100-199,205; repeat or comma-separate.",
)
@click.option(
    "--secret",
    default=None,
    metavar="SECRET",
    help="Import a secret the partner already holds ('-' reads it from stdin).",
)
@click.option(
    "--rate",
    "rate_per_second",
    type=click.FloatRange(min=0),
    default=None,
    help="Requests per second for this partner (0: unlimited) [default: the server setting].",
)
@click.option(
    "--rows-per-minute",
    type=click.IntRange(min=0),
    default=None,
    help="Records per minute for this partner (0: unlimited) [default: the server setting].",
)
@db_option
@json_option
@click.pass_context
@database_errors
def add(
    ctx: click.Context,
    name: str,
    accountcodes: tuple[str, ...],
    extensions: tuple[str, ...],
    secret: str | None,
    rate_per_second: float | None,
    rows_per_minute: int | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Add partner NAME and print its secret once.

    Without --accountcode and --extensions the partner sees every call.
    """
    if secret == "-":  # noqa: S105 - "-" means read it from stdin
        secret = sys.stdin.readline().strip()
    settings = settings_from(ctx, database_url=database_url)
    limits = {"rate_per_second": rate_per_second, "rows_per_minute": rows_per_minute}
    engine = existing_engine(settings)
    matcher = ExtensionMatcher(settings.extension_pattern, settings.extensions)
    issued = _admin(
        partner_admin.add,
        engine,
        name,
        list(accountcodes),
        list(extensions),
        secret,
        {key: value for key, value in limits.items() if value is not None},
        matcher.is_extension,
    )
    _issued(issued, as_json, "Added" if secret is None else "Imported the secret")
    missing, known = partner_admin.unknown_accountcodes(engine, list(accountcodes))
    for code in missing:
        listed = ", ".join(known) if known else "none yet"
        click.echo(
            f"Warning: no call has accountcode {code!r} yet, so this partner sees nothing "
            f"of it until one does. Accountcodes in the calls: {listed}.",
            err=True,
        )


@partner.command("rotate")
@click.argument("name")
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How long the old secrets keep working (e.g. 0, 30m, 24h, 7d).",
)
@db_option
@json_option
@click.pass_context
@database_errors
def rotate(
    ctx: click.Context, name: str, overlap: str, database_url: str | None, as_json: bool
) -> None:
    """Issue a new secret for NAME; old secrets stop working after --overlap."""
    try:
        window = parse_duration(overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--overlap") from None
    settings = settings_from(ctx, database_url=database_url)
    issued = _admin(partner_admin.rotate, existing_engine(settings), name, window)
    _issued(issued, as_json, "New secret")
    if not as_json:
        click.echo(
            f"The old secrets keep working for {overlap}."
            if window.total_seconds() > 0
            else "The old secrets stopped working now."
        )


@partner.command("revoke")
@click.argument("name")
@db_option
@json_option
@click.pass_context
@database_errors
def revoke(ctx: click.Context, name: str, database_url: str | None, as_json: bool) -> None:
    """Revoke NAME and every secret it holds, at once."""
    settings = settings_from(ctx, database_url=database_url)
    earlier = _admin(partner_admin.revoke, existing_engine(settings), name)
    if as_json:
        emit_json({"name": name, "revoked": True, "already": earlier is not None})
    elif earlier is not None:
        click.echo(
            f"Partner {name!r} was already revoked on {earlier:%Y-%m-%d %H:%M:%S} UTC; "
            "nothing changed."
        )
    else:
        click.echo(f"Partner {name!r} revoked: its secrets no longer work.")


def _limit(kind: type) -> Any:
    def convert(value: str | None) -> Any:
        if value is None or value == "default":
            return value
        try:
            number = kind(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number or 'default'") from None
        if number < 0:
            raise click.BadParameter("must not be negative (0 means unlimited)")
        return number

    return convert


@partner.command("limits")
@click.argument("name")
@click.option("--rate", metavar="N|default", help="Requests per second (0: unlimited).")
@click.option("--rows-per-minute", metavar="N|default", help="Records per minute (0: unlimited).")
@db_option
@json_option
@click.pass_context
@database_errors
def limits_cmd(
    ctx: click.Context,
    name: str,
    rate: str | None,
    rows_per_minute: str | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Show or set NAME's rate limits ('default' returns to the server settings)."""
    changes: dict[str, Any] = {}
    for key, raw, kind in (
        ("rate_per_second", rate, float),
        ("rows_per_minute", rows_per_minute, int),
    ):
        value = _limit(kind)(raw)
        if value is not None:
            changes[key] = None if value == "default" else value
    settings = settings_from(ctx, database_url=database_url)
    current = _admin(partner_admin.set_limits, existing_engine(settings), name, changes)
    if as_json:
        emit_json({"name": name, **current})
        return
    defaults = {
        "rate_per_second": settings.rate_limit_per_second,
        "rows_per_minute": settings.rate_limit_rows_per_minute,
    }
    for key, value in current.items():
        shown = f"{defaults[key]} (server default)" if value is None else value
        click.echo(f"{key}: {shown if shown != 0 else 'unlimited'}")


@partner.command("show")
@click.argument("name")
@db_option
@json_option
@click.pass_context
@database_errors
def show(ctx: click.Context, name: str, database_url: str | None, as_json: bool) -> None:
    """Show NAME's scope and secrets (prefixes only)."""
    settings = settings_from(ctx, database_url=database_url)
    info = _admin(partner_admin.show, existing_engine(settings), name)
    if as_json:
        emit_json(info)
        return
    click.echo(f"name:         {info['name']}")
    click.echo(f"accountcodes: {', '.join(info['accountcodes']) or '(all)'}")
    click.echo(f"extensions:   {info['extensions'] or '(all)'}")
    click.echo(f"created:      {info['created_at']}")
    click.echo(f"revoked:      {info['revoked_at'] or 'no'}")
    for key, label in (("rate_per_second", "rate/s:      "), ("rows_per_minute", "rows/minute: ")):
        value = info.get(key)
        click.echo(f"{label} {'server default' if value is None else value or 'unlimited'}")
    click.echo("secrets:")
    for item in info["secrets"]:
        state = "active" if item["active"] else "inactive"
        ends = f", expires {item['expires_at']}" if item["expires_at"] else ""
        click.echo(f"  {item['prefix']:<8} {state}, created {item['created_at']}{ends}")


@partner.command("list")
@db_option
@json_option
@click.pass_context
@database_errors
def list_cmd(ctx: click.Context, database_url: str | None, as_json: bool) -> None:
    """List partners with their scope and number of active secrets."""
    settings = settings_from(ctx, database_url=database_url)
    rows = partner_admin.list_all(existing_engine(settings))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No partners yet: add one with `voip24h partner add NAME`.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "accountcodes", "extensions", "active secrets", "status")
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["accountcodes"]) or "(all)",
            row["extensions"] or "(all)",
            str(row["active_secrets"]),
            "revoked" if row["revoked"] else "active",
        )
    Console(width=120).print(table)
