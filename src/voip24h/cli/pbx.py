"""``voip24h pbx``: the live link to the PBX over AMI, on its own (without serving)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import click

from voip24h.cli.common import db_option, existing_engine, settings_from
from voip24h.config import Settings


def check_ami_url(settings: Settings) -> None:
    """Refuse an ``ami_url`` that cannot be used, in one line (the secret never shown)."""
    from voip24h.pbx.target import parse_ami_url

    if settings.ami_url:
        try:
            parse_ami_url(settings.ami_url)
        except ValueError as exc:
            raise click.ClickException(f"ami_url: {exc}") from None


@click.command("pbx")
@db_option
@click.option(
    "--ami-url", default=None, metavar="URL",
    help="ami://USER:SECRET@HOST:5038 [env VOIP24H_AMI_URL].",
)  # fmt: skip
@click.pass_context
def pbx(ctx: click.Context, **flags: Any) -> None:
    """Run the live link to the PBX (AMI): call events into the outbox, until stopped.

    Like the link inside `voip24h serve`, it runs only while it holds the database's
    pbx-link lease, so it may run beside the servers: one of them holds the link.
    A refused login or an unreachable PBX is logged and retried with backoff.
    """
    from voip24h.server.observability import configure_logging

    settings = settings_from(ctx, **flags)
    if not settings.ami_url:
        raise click.UsageError("give the PBX's manager interface: --ami-url or VOIP24H_AMI_URL")
    check_ami_url(settings)
    engine = existing_engine(settings)
    configure_logging(settings.log_level)
    try:
        asyncio.run(_run(settings, engine))
    finally:
        engine.dispose()


async def _run(settings: Settings, engine: Any) -> None:
    from voip24h.pbx.runner import PbxRunner

    runner = PbxRunner(settings, engine)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop)
    click.echo(f"PBX link to {runner.target.masked()}: running until stopped (Ctrl-C)", err=True)
    await runner.run()
