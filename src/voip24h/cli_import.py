"""``voip24h import``: load Asterisk Master.csv files into the cdr table."""

from __future__ import annotations

import csv
from typing import Any

import click

from voip24h.cli_common import (
    database_errors,
    db_option,
    emit_json,
    engine_for,
    json_option,
    settings_from,
)
from voip24h.importer import Layout, LayoutError, detect_layout, parse_rows
from voip24h.loader import IndexOutOfDate, Loader, LoadStats, SchemaOutOfDate


def _layout_for(path: str, flags: dict[str, bool]) -> Layout:
    if any(flags.values()):
        return Layout(**flags)
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for fields in csv.reader(handle):
            if fields:
                return detect_layout(len(fields))
    return Layout()


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--loguniqueid", is_flag=True, help="Lines carry uniqueid (cdr.conf loguniqueid=yes)."
)
@click.option(
    "--loguserfield", is_flag=True, help="Lines carry userfield (cdr.conf loguserfield=yes)."
)
@click.option(
    "--newcdrcolumns",
    is_flag=True,
    help="Lines end with peeraccount, linkedid, sequence (cdr.conf newcdrcolumns=yes).",
)
@click.option("--usegmtime", is_flag=True, help="Times are GMT (cdr.conf usegmtime=yes).")
@db_option
@json_option
@click.pass_context
@database_errors
def import_cmd(
    ctx: click.Context,
    files: tuple[str, ...],
    loguniqueid: bool,
    loguserfield: bool,
    newcdrcolumns: bool,
    usegmtime: bool,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Import Asterisk Master.csv FILES (idempotent: a row already loaded is skipped).

    Without layout flags the layout is detected from the column count where that is
    unambiguous.
    """
    settings = settings_from(ctx, database_url=database_url)
    loader = Loader(engine_for(settings), settings)
    try:
        loader.check_ready()
    except (SchemaOutOfDate, IndexOutOfDate) as exc:
        raise click.ClickException(str(exc)) from None
    flags = {
        "loguniqueid": loguniqueid,
        "loguserfield": loguserfield,
        "newcdrcolumns": newcdrcolumns,
    }
    total, rejected = LoadStats(), 0
    for path in files:
        try:
            layout = _layout_for(path, flags)
        except LayoutError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            rows: list[dict[str, Any]] = []
            for parsed in parse_rows(handle, layout.columns, settings.zone, usegmtime):
                if parsed.row is None:
                    rejected += 1
                    click.echo(f"{path}:{parsed.line}: rejected: {parsed.error}", err=True)
                else:
                    rows.append(parsed.row)
            total.add(loader.load(rows))
    summary = {
        "imported": total.inserted,
        "duplicates": total.duplicates,
        "rejected": rejected,
        "records": total.records,
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"imported {total.inserted:,} rows, skipped {total.duplicates:,} duplicates, "
            f"rejected {rejected:,}"
        )
    if rejected:
        ctx.exit(1)
