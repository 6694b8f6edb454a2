"""``voip24h webhook``: operators manage partners' webhook endpoints and see every
delivery attempt; ``voip24h deliver`` runs the deliverer on its own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import click

from voip24h import errors
from voip24h.cli.common import database_errors, db_option, emit_json, existing_engine, settings_from
from voip24h.domain.partners import parse_duration


def _service(ctx: click.Context, database_url: str | None) -> Any:
    from voip24h.service.webhooks.endpoints import Webhooks

    settings = settings_from(ctx, database_url=database_url)
    return Webhooks(settings, existing_engine(settings))


def _run(action: Coroutine[Any, Any, Any]) -> Any:
    try:
        return asyncio.run(action)
    except errors.ApiError as exc:
        raise click.ClickException(exc.message) from None


def _secret(secret: str) -> None:
    click.echo("Its signing secret, shown only this once:\n")
    click.echo(f"    {secret}\n")
    click.echo("Give it to the partner over a safe channel; receivers verify with it.")


json_flag = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


@click.group()
def webhook() -> None:
    """Manage partners' webhook endpoints and see their delivery attempts."""


@webhook.command("add")
@click.argument("partner")
@click.argument("url")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    type=click.Choice(
        ["record.created", "record.updated", "call.ringing", "call.answered", "call.ended"]
    ),
    help="Only this event type; repeat for several [default: all].",
)
@click.option("--user", "users", multiple=True, help="Only this extension's events; repeat.")
@db_option
@click.pass_context
@database_errors
def add(
    ctx: click.Context,
    partner: str,
    url: str,
    event_types: tuple[str, ...],
    users: tuple[str, ...],
    database_url: str | None,
) -> None:
    """Add an endpoint URL for PARTNER; prints its signing secret once."""
    service = _service(ctx, database_url)

    async def run() -> dict[str, Any]:
        partner_id, scope = await service.partner(partner)
        return await service.add(partner_id, scope, url, event_types, users)

    added = _run(run())
    click.echo(f"webhook {added['id']} added for partner {partner!r}: {url}")
    _secret(added["secret"])


@webhook.command("list")
@click.option("--partner", default=None, help="Only this partner's endpoints.")
@db_option
@json_flag
@click.pass_context
@database_errors
def list_cmd(
    ctx: click.Context, partner: str | None, database_url: str | None, as_json: bool
) -> None:
    """List endpoints (never their secrets)."""
    from voip24h.service.webhooks.endpoints import endpoint_document

    service = _service(ctx, database_url)
    rows = _run(service.endpoints(None))
    if partner is not None:
        rows = [row for row in rows if row["partner"] == partner]
    docs = [{**endpoint_document(row), "partner": row["partner"]} for row in rows]
    if as_json:
        emit_json(docs)
        return
    if not docs:
        click.echo("no webhook endpoints")
    for doc in docs:
        state = "enabled" if doc["enabled"] else f"disabled ({doc['disabledReason']})"
        kinds = ",".join(doc["eventTypes"])
        users = f" users={','.join(doc['users'])}" if doc["users"] else ""
        click.echo(f"{doc['id']}  {doc['partner']}  {state}  {doc['url']}  {kinds}{users}")


@webhook.command("remove")
@click.argument("endpoint_id")
@db_option
@click.pass_context
@database_errors
def remove(ctx: click.Context, endpoint_id: str, database_url: str | None) -> None:
    """Remove an endpoint; nothing more is sent to it."""
    _run(_service(ctx, database_url).remove(endpoint_id, None))
    click.echo(f"webhook {endpoint_id} removed")


@webhook.command("test")
@click.argument("endpoint_id")
@db_option
@click.pass_context
@database_errors
def test(ctx: click.Context, endpoint_id: str, database_url: str | None) -> None:
    """Send a signed webhook.test event now and show the receiver's answer."""
    result = _run(_service(ctx, database_url).test(endpoint_id, None))
    if result["delivered"]:
        click.echo(f"delivered: HTTP {result['status']}")
        return
    raise click.ClickException(f"not delivered: {result['error'] or result['status']}")


@webhook.command("rotate")
@click.argument("endpoint_id")
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the old secret also signs (e.g. 24h, 2d, 0).",
)
@db_option
@click.pass_context
@database_errors
def rotate(ctx: click.Context, endpoint_id: str, overlap: str, database_url: str | None) -> None:
    """Give an endpoint a new signing secret; the old one keeps signing for --overlap."""
    try:
        window: timedelta = parse_duration(overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--overlap") from None
    rotated = _run(_service(ctx, database_url).rotate(endpoint_id, None, window))
    click.echo(
        f"webhook {endpoint_id}: new secret; the previous one also signs until "
        f"{rotated['previousSecretValidUntil']}"
    )
    _secret(rotated["secret"])


@webhook.command("attempts")
@click.argument("endpoint_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@db_option
@json_flag
@click.pass_context
@database_errors
def attempts(
    ctx: click.Context, endpoint_id: str | None, limit: int, database_url: str | None, as_json: bool
) -> None:
    """Every delivery attempt, newest first (of ENDPOINT_ID, or of all endpoints)."""
    rows = _run(_service(ctx, database_url).attempts(endpoint_id, limit))
    if as_json:
        emit_json(
            [
                {
                    "at": row["at"].isoformat(sep=" "),
                    "endpointId": row["endpoint_id"],
                    "eventId": row["event_id"],
                    "sequence": row["event_seq"],
                    "attempt": row["attempt"],
                    "status": row["status"],
                    "error": row["error"],
                    "latencyMs": round(row["latency_ms"], 1),
                }
                for row in rows
            ]
        )
        return
    if not rows:
        click.echo("no delivery attempts")
    for row in rows:
        outcome = f"HTTP {row['status']}" if row["status"] is not None else "no answer"
        error = f"  {row['error']}" if row["error"] else ""
        click.echo(
            f"{row['at']:%Y-%m-%d %H:%M:%S}  {row['endpoint_id']}  {row['event_id']}  "
            f"#{row['attempt']}  {outcome}  {row['latency_ms']:.0f} ms{error}"
        )


@click.command("deliver")
@db_option
@click.option(
    "--once", is_flag=True, help="One round (take the lease, deliver what is due), then exit."
)
@click.pass_context
@database_errors
def deliver(ctx: click.Context, database_url: str | None, once: bool) -> None:
    """Deliver webhooks, without serving the API (one process holds the lease at a time)."""
    from voip24h.service.webhooks import sender
    from voip24h.service.webhooks.deliverer import Deliverer

    settings = settings_from(ctx, database_url=database_url)
    deliverer = Deliverer(settings, existing_engine(settings))

    async def run() -> None:
        if once:
            async with sender.new_client() as client:
                await deliverer.round(client)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"delivering webhooks as {deliverer.holder} (stop with Ctrl-C)", err=True)
        await deliverer.run(stop)

    asyncio.run(run())
