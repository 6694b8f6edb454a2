"""``voip24h query``: ask a voip24h server for call records, as a partner would.

Exit codes (also in ``voip24h query --help`` and docs/cli.md):

0  the request succeeded (even with no records)
1  the server refused the request as invalid (respCode -1, HTTP 400/404/413/415, ...)
2  usage error: a bad option or argument, or no secret available
3  the secret was refused (HTTP 401) or the request is outside the partner's scope (403)
4  the server could not be reached, timed out, or stayed unavailable or rate limited
   after the retries (HTTP 429/5xx), or did not answer with the voip24h envelope
141  the output's reader closed the pipe (``| head``): stopped quietly, as SIGPIPE stops
   other Unix tools
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from voip24h.client import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Client,
    PermissionDenied,
    RetryPolicy,
    Voip24hError,
)

SECRET_ENV = "VOIP24H_PARTNER_SECRET"  # noqa: S105 - a variable name
URL_ENV = "VOIP24H_URL"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_AUTH, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
COLUMNS = ("callDate", "callId", "user", "phoneNumber", "callType", "callStatus")
EXIT_CODES_HELP = """\b
Exit codes:
  0  success (also when no record matches)
  1  the server refused the request as invalid (respCode -1)
  2  usage error, or no secret available
  3  secret refused (HTTP 401) or outside the partner's scope (403)
  4  server unreachable, timed out, or unavailable/rate limited after retries
  141  the reader of the output went away (e.g. | head): no message, as other tools
"""


def exit_code(error: Voip24hError) -> int:
    """The documented exit code for a client error."""
    if isinstance(error, AuthenticationError | PermissionDenied):
        return EXIT_AUTH
    if isinstance(error, BadRequest):
        return EXIT_REFUSED
    return EXIT_UNAVAILABLE


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_secret(from_stdin: bool) -> str:
    """The partner secret: stdin (--secret-stdin), the environment, or a hidden prompt."""
    if from_stdin:
        secret = sys.stdin.readline().strip()
    elif os.environ.get(SECRET_ENV):
        secret = os.environ[SECRET_ENV].strip()
    elif _stdin_is_terminal():
        secret = click.prompt("Partner secret", hide_input=True, err=True).strip()
    else:
        secret = ""
    if not secret:
        click.echo(
            f"error: no partner secret: set {SECRET_ENV}, pipe it with --secret-stdin, "
            "or run on a terminal to be asked",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    return secret


def query_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every query subcommand shares."""
    options = [
        click.option(
            "--url",
            envvar=URL_ENV,
            default="http://127.0.0.1:8024",
            show_default=True,
            metavar="URL",
            help=f"Server (or endpoint) URL [env {URL_ENV}].",
        ),
        click.option(
            "--secret-stdin",
            is_flag=True,
            help=f"Read the secret from the first line of stdin (else {SECRET_ENV}, "
            "else a hidden prompt).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON array."),
        click.option("--csv", "as_csv", is_flag=True, help="Print the records as CSV."),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            metavar="STATUS",
            help="Only calls with this callStatus (repeatable; servers with filters).",
        ),
        click.option(
            "--extended",
            is_flag=True,
            help="Ask for every extended field (duration, billsec, direction, ...); shown "
            "with --json and --csv.",
        ),
        click.option(
            "--page-size",
            type=click.IntRange(1, 100_000),
            default=None,
            metavar="N",
            help="Fetch page by page, N records a request (servers with paging).",
        ),
        click.option(
            "--zone",
            default="Asia/Ho_Chi_Minh",
            show_default=True,
            help="The PBX's time zone (callDate is local time there).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(0.1),
            default=30.0,
            show_default=True,
            help="Seconds to wait for an answer.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 10),
            default=3,
            show_default=True,
            help="Retries on HTTP 429/502/503/504 and refused connections.",
        ),
        click.option(
            "--bearer",
            is_flag=True,
            help="Send the secret as Authorization: Bearer (servers that accept it).",
        ),
    ]
    @functools.wraps(command)
    def with_output(*args: Any, as_json: bool, as_csv: bool, **kwargs: Any) -> Any:
        if as_json and as_csv:
            raise click.UsageError("--json and --csv cannot be used together: pick one.")
        kwargs["output"] = "json" if as_json else "csv" if as_csv else None
        return command(*args, **kwargs)

    wrapped: Callable[..., Any] = with_output
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def run_query(request_type: str, data: dict[str, Any], opts: dict[str, Any]) -> None:
    """Send a request answering records, print them, exit with the documented code."""
    if opts["statuses"]:
        data["callStatus"] = list(opts["statuses"])
    if opts["extended"]:
        data["extended"] = True

    def fetch(client: Client) -> list[dict[str, Any]]:
        if opts["page_size"]:
            found = client.iter_records(request_type, data, page_size=opts["page_size"])
        else:
            found = iter(client.records(request_type, data))
        return [record.to_wire() for record in found]

    rows = _call(opts, fetch)
    emit(rows, COLUMNS, opts["output"], "record")


def _call(opts: dict[str, Any], fetch: Callable[[Client], list[dict[str, Any]]]) -> Any:
    """Run ``fetch`` with a client built from the options; errors exit with their code."""
    secret = read_secret(opts["secret_stdin"])
    try:
        client = Client(
            opts["url"],
            secret,
            zone=opts["zone"],
            timeout=opts["timeout"],
            retry=RetryPolicy(attempts=opts["retries"] + 1),
            auth="bearer" if opts["bearer"] else "body",
        )
    except (ValueError, LookupError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        with client:
            return fetch(client)
    except ApiError as exc:
        click.echo(f"error: {exc.resp_msg} [{exc.error_code}, HTTP {exc.status}]", err=True)
        sys.exit(exit_code(exc))
    except Voip24hError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exit_code(exc))


# A reader that went away (``| head``) ends us as SIGPIPE ends other Unix tools:
# quietly, with the shell's status for a process killed by SIGPIPE.
EXIT_CLOSED_PIPE = 128 + 13


def emit(rows: list[dict[str, Any]], columns: Sequence[str], output: str | None, noun: str) -> None:
    """Print rows (wire dicts) as JSON, CSV, or a table of ``columns``."""
    try:
        _emit(rows, columns, output, noun)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the failed flush at exit: point stdout at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_CLOSED_PIPE)


def _emit(
    rows: list[dict[str, Any]], columns: Sequence[str], output: str | None, noun: str
) -> None:
    out = sys.stdout
    if output == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if output == "csv":
        fields = list(columns)
        for row in rows:
            fields += [key for key in row if key not in fields]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _text(value) for key, value in row.items()})
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for row in rows:
        table.add_row(*(_text(row.get(name, "")) for name in columns))
    summary = f"{len(rows)} {noun}{'s' if len(rows) != 1 else ''}"
    if out.isatty():
        console = Console(file=out, highlight=False)
        console.print(table)
        console.print(summary)
        return
    # Not a terminal: plain text, fixed width, no trailing blanks (stable for scripts and diffs).
    buffer = io.StringIO()
    Console(file=buffer, width=120, highlight=False, color_system=None).print(table)
    for line in buffer.getvalue().splitlines():
        out.write(line.rstrip() + "\n")
    out.write(summary + "\n")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key}={count}" for key, count in value.items())
    return str(value)


@click.group(epilog=EXIT_CODES_HELP)
def query() -> None:
    """Ask a voip24h server for call records, as a partner does.

    The secret comes from VOIP24H_PARTNER_SECRET, from stdin with --secret-stdin, or
    from a hidden prompt: never from a flag, so it stays out of shell history.
    Dates are dd/mm/yyyy, whole days in the PBX's time zone, both ends included.
    """


def _window(date_from: str | None, date_to: str | None) -> tuple[str, str] | None:
    if (date_from is None) != (date_to is None):
        raise click.UsageError("give both --from and --to, or neither")
    return None if date_from is None else (date_from, date_to or "")


@query.command("user", epilog=EXIT_CODES_HELP)
@click.argument("user")
@click.option("--from", "date_from", metavar="DD/MM/YYYY", help="First day (getUserDate).")
@click.option("--to", "date_to", metavar="DD/MM/YYYY", help="Last day (getUserDate).")
@query_options
def user_cmd(user: str, date_from: str | None, date_to: str | None, **opts: Any) -> None:
    """Calls of extension USER: getUser, or getUserDate with --from and --to."""
    window = _window(date_from, date_to)
    if window is None:
        run_query("getUser", {"user": user}, opts)
    else:
        run_query("getUserDate", {"user": user, "fromDate": window[0], "toDate": window[1]}, opts)


@query.command("date", epilog=EXIT_CODES_HELP)
@click.option("--from", "date_from", required=True, metavar="DD/MM/YYYY", help="First day.")
@click.option("--to", "date_to", required=True, metavar="DD/MM/YYYY", help="Last day.")
@query_options
def date_cmd(date_from: str, date_to: str, **opts: Any) -> None:
    """Every call in the partner's scope between two days: getDate."""
    run_query("getDate", {"fromDate": date_from, "toDate": date_to}, opts)


@query.command("call", epilog=EXIT_CODES_HELP)
@click.argument("call_id", metavar="CALL_ID")
@query_options
def call_cmd(call_id: str, **opts: Any) -> None:
    """The records of one call by its callId: getCallData (servers with the extended API)."""
    run_query("getCallData", {"callId": call_id}, opts)


STATS_COLUMNS = ("period", "user", "total", "answered", "talkTime", "avgTalkTime", "maxTalkTime")


@query.command("stats", epilog=EXIT_CODES_HELP)
@click.option("--from", "date_from", required=True, metavar="DD/MM/YYYY", help="First day.")
@click.option("--to", "date_to", required=True, metavar="DD/MM/YYYY", help="Last day.")
@click.option("--user", default=None, help="Only this extension.")
@click.option("--hour", is_flag=True, help="Per hour instead of per day.")
@query_options
def stats_cmd(date_from: str, date_to: str, user: str | None, hour: bool, **opts: Any) -> None:
    """Calls per user and day (or hour): counts by status and talk time: getStats."""
    if opts["page_size"] or opts["extended"]:
        raise click.UsageError("--page-size and --extended do not apply to stats")
    options: dict[str, Any] = {}
    if opts["statuses"]:
        options["callStatus"] = list(opts["statuses"])

    def fetch(client: Client) -> list[dict[str, Any]]:
        entries = client.get_stats(
            date_from, date_to, user=user, group_by="hour" if hour else "day", **options
        )
        return [
            {
                "period": e.period,
                "user": e.user,
                "total": e.total,
                "answered": e.answered,
                "talkTime": e.talk_time,
                "avgTalkTime": e.avg_talk_time,
                "maxTalkTime": e.max_talk_time,
                "byStatus": dict(e.by_status),
            }
            for e in entries
        ]

    emit(_call(opts, fetch), STATS_COLUMNS, opts["output"], "row")


DIAL_COLUMNS = ("result", "callId", "user", "phoneNumber", "reason")


@query.command("dial", epilog=EXIT_CODES_HELP)
@click.argument("user")
@click.argument("phone_number", metavar="PHONE_NUMBER")
@click.option("--key", default=None, help="Idempotency key (default: a fresh one).")
@query_options
def dial_cmd(user: str, phone_number: str, key: str | None, **opts: Any) -> None:
    """Ring USER's phone, then dial PHONE_NUMBER (click-to-call): makeDial.

    It answers once the PBX knows how the call went (answered, busy, no_answer,
    congested, no_such_extension or failed), with the call's id.
    """
    if opts["page_size"] or opts["extended"] or opts["statuses"]:
        raise click.UsageError("--page-size, --extended and --status do not apply to dial")

    def fetch(client: Client) -> list[dict[str, Any]]:
        done = client.make_dial(user, phone_number, idempotency_key=key)
        return [{"result": done.result, "callId": done.call_id, "user": done.user,
                 "phoneNumber": done.phone_number, "reason": done.reason}]

    emit(_call(opts, fetch), DIAL_COLUMNS, opts["output"], "call")
