"""`voip24h query` against a live server: exact output, secrets, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.live_server import LiveServer, free_port, live_server
from voip24h.cli import query as cli_query
from voip24h.cli.main import cli
from voip24h.config import load_settings
from voip24h.db.engine import make_engine
from voip24h.server.app import create_app
from voip24h.service import partner_admin

ROOT = Path(__file__).resolve().parents[2]
WINDOW = ["--from", "01/07/2018", "--to", "30/07/2018"]
RECORDS_137 = [
    ("1532857052.131132", "137", "0982056720", "EXTERNAL", "NO ANSWER", "2018-07-29 16:37:32"),
    ("1532834934.130789", "137", "0971828252", "EXTERNAL", "NO ANSWER", "2018-07-29 10:28:54"),
    ("1532767500.128005", "137", "0938111222", "EXTERNAL", "ANSWERED", "2018-07-28 15:45:42"),
    ("1532665800.127004", "137", "101", "INTERNAL", "ANSWERED", "2018-07-27 11:30:00"),
    ("1532502190.125002", "137", "0912345678", "EXTERNAL", "ANSWERED", "2018-07-25 14:03:10"),
    ("1532052725.120001", "137", "0903123456", "EXTERNAL", "ANSWERED", "2018-07-20 09:12:05"),
]
WIRE = ["callId", "user", "phoneNumber", "callType", "callStatus", "callDate"]

TABLE_137 = """\
 callDate              callId              user   phoneNumber   callType   callStatus
──────────────────────────────────────────────────────────────────────────────────────
 2018-07-29 16:37:32   1532857052.131132   137    0982056720    EXTERNAL   NO ANSWER
 2018-07-29 10:28:54   1532834934.130789   137    0971828252    EXTERNAL   NO ANSWER
 2018-07-28 15:45:42   1532767500.128005   137    0938111222    EXTERNAL   ANSWERED
 2018-07-27 11:30:00   1532665800.127004   137    101           INTERNAL   ANSWERED
 2018-07-25 14:03:10   1532502190.125002   137    0912345678    EXTERNAL   ANSWERED
 2018-07-20 09:12:05   1532052725.120001   137    0903123456    EXTERNAL   ANSWERED
6 records
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server on examples/Master.csv, and the secret of an unrestricted partner."""
    url = f"sqlite:///{tmp_path_factory.mktemp('query') / 'voip24h.db'}"
    runner = CliRunner()
    for args in (
        ["db", "upgrade", "--db", url],
        ["import", str(ROOT / "examples" / "Master.csv"), "--db", url],
    ):
        assert runner.invoke(cli, args).exit_code == 0
    engine = make_engine(url)
    secret = partner_admin.add(engine, "support", [], [], None).secret
    partner_admin.add(engine, "only-101", [], ["101"], "only-101-secret-0123456789")
    engine.dispose()
    with live_server(create_app(load_settings({"database_url": url}, environ={}))) as live:
        yield live, secret


@pytest.fixture
def query(server, monkeypatch):
    """query(*args, secret=..., input=None) -> click Result of `voip24h query ARGS --url ...`."""
    live, default_secret = server
    monkeypatch.delenv("VOIP24H_PARTNER_SECRET", raising=False)
    monkeypatch.delenv("VOIP24H_URL", raising=False)

    def run(*args: str, secret: str | None = default_secret, input: str | None = None):
        env = {"VOIP24H_PARTNER_SECRET": secret} if secret else {}
        return CliRunner().invoke(cli, ["query", *args, "--url", live.url], env=env, input=input)

    return run


def test_table_on_the_terminal(query):
    result = query("user", "137", *WINDOW)
    assert result.exit_code == 0, result.output
    assert result.stdout == TABLE_137


def test_json_is_the_records_as_sent(query):
    result = query("user", "137", *WINDOW, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [dict(zip(WIRE, r, strict=True)) for r in RECORDS_137]
    assert list(json.loads(result.stdout)[0]) == WIRE


def test_json_and_csv_together_is_a_usage_error(query):
    result = query("user", "137", *WINDOW, "--json", "--csv")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: --json and --csv cannot be used together: pick one."
    )


def test_a_reader_that_goes_away_stops_the_output_quietly(server):
    """`voip24h query ... | head -1`: no traceback, no message, SIGPIPE's status."""
    live, secret = server
    env = {**os.environ, "VOIP24H_PARTNER_SECRET": secret, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "voip24h", "query", "date", "--from", "01/07/2018",
               "--to", "31/07/2018", "--csv", "--url", live.url]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: like head after its lines
    try:
        with subprocess.Popen(command, stdout=write_end, stderr=subprocess.PIPE, env=env) as proc:
            _, err = proc.communicate(timeout=60)
    finally:
        os.close(write_end)
    assert (proc.returncode, err.decode()) == (cli_query.EXIT_CLOSED_PIPE, "")


def test_csv(query):
    result = query("user", "137", *WINDOW, "--csv")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "callDate,callId,user,phoneNumber,callType,callStatus"
    assert lines[1] == "2018-07-29 16:37:32,1532857052.131132,137,0982056720,EXTERNAL,NO ANSWER"
    assert len(lines) == 1 + len(RECORDS_137)


def test_user_without_dates_is_get_user_and_date_is_get_date(query):
    by_user = json.loads(query("user", "101", "--json").stdout)
    assert [r["callId"] for r in by_user] == [
        "1532767500.128005",
        "1532665800.127004",
        "1532574000.126003",
    ]
    by_date = json.loads(
        query("date", "--from", "26/07/2018", "--to", "26/07/2018", "--json").stdout
    )
    assert [(r["user"], r["callStatus"]) for r in by_date] == [
        ("102", "ANSWERED"),
        ("101", "NO ANSWER"),
    ]


def test_empty_result_is_success(query):
    result = query("user", "555", "--csv")
    assert (result.exit_code, result.stdout) == (
        0,
        "callDate,callId,user,phoneNumber,callType,callStatus\n",
    )


def test_secret_from_a_hidden_prompt(query, server, monkeypatch):
    monkeypatch.setattr(cli_query, "_stdin_is_terminal", lambda: True)
    result = query("user", "137", "--json", secret=None, input=server[1] + "\n")
    assert result.exit_code == 0, result.output
    assert "Partner secret:" in result.stderr
    assert server[1] not in result.output


def test_secret_from_stdin(query, server):
    result = query("user", "137", "--json", "--secret-stdin", secret=None, input=server[1] + "\n")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == len(RECORDS_137)


def test_no_secret_is_a_usage_error(query):
    result = query("user", "137", secret=None)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no partner secret: set VOIP24H_PARTNER_SECRET")


@pytest.mark.parametrize(
    ("args", "secret", "code", "message"),
    [
        (
            ["user", "137"],
            "wrong-secret",
            3,
            "error: partnerSecret is not valid. [invalid_secret, HTTP 401]\n",
        ),
        (
            ["user", "137"],
            "only-101-secret-0123456789",
            3,
            "error: This user is not in the partner's scope. [user_not_permitted, HTTP 403]\n",
        ),
        (
            ["date", "--from", "31/02/2018", "--to", "01/03/2018"],
            None,
            1,
            "error: fromDate: '31/02/2018' is not a real calendar date. [invalid_date, HTTP 400]\n",
        ),
    ],
    ids=["wrong-secret", "out-of-scope", "bad-date"],
)
def test_refusals_exit_with_documented_codes(query, args, secret, code, message):
    result = query(*args, **({"secret": secret} if secret else {}))
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message)


def test_unreachable_server_exits_4(monkeypatch):
    monkeypatch.setenv("VOIP24H_PARTNER_SECRET", "whatever")
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["query", "user", "137", "--url", url, "--retries", "0"])
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: cannot connect to {url}/api/v1/partner/voip24h")


def test_from_without_to_is_a_usage_error(query):
    result = query("user", "137", "--from", "01/07/2018")
    assert result.exit_code == 2
    assert "give both --from and --to, or neither" in result.stderr


def test_help_documents_the_exit_codes():
    result = CliRunner().invoke(cli, ["query", "user", "--help"])
    assert "Exit codes:" in result.stdout
    assert "3  secret refused (HTTP 401)" in result.stdout
    assert "--secret" not in result.stdout.replace("--secret-stdin", "")


def test_page_size_walks_pages_to_the_same_records(query):
    whole = query("user", "137", *WINDOW, "--json")
    paged = query("user", "137", *WINDOW, "--json", "--page-size", "2")
    assert paged.exit_code == 0, paged.output
    assert json.loads(paged.stdout) == json.loads(whole.stdout)


def test_status_filter(query):
    result = query("user", "137", *WINDOW, "--csv", "--status", "NO ANSWER")
    assert result.exit_code == 0, result.output
    assert [line.split(",")[1] for line in result.stdout.splitlines()[1:]] == [
        "1532857052.131132",
        "1532834934.130789",
    ]


def test_call(query):
    result = query("call", "1532574000.126003", "--csv")
    assert result.exit_code == 0, result.output
    rows = sorted(
        line.split(",")[2] + " " + line.split(",")[5] for line in result.stdout.splitlines()[1:]
    )
    assert rows == ["101 NO ANSWER", "102 ANSWERED"]


def test_bearer(query):
    result = query("user", "101", "--json", "--bearer")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_stats_table(query):
    result = query("stats", "--from", "26/07/2018", "--to", "27/07/2018")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        " period       user   total   answered   talkTime   avgTalkTime   maxTalkTime\n"
        "─────────────────────────────────────────────────────────────────────────────\n"
        " 2018-07-26   101    1       0          0          0.0           0\n"
        " 2018-07-27   101    1       1          45         45.0          45\n"
        " 2018-07-26   102    1       1          210        210.0         210\n"
        " 2018-07-27   137    1       1          45         45.0          45\n"
        "4 rows\n"
    )


def test_stats_json_and_csv(query):
    args = ["stats", "--from", "29/07/2018", "--to", "29/07/2018", "--user", "137"]
    as_json = json.loads(query(*args, "--json").stdout)
    assert as_json == [
        {
            "period": "2018-07-29",
            "user": "137",
            "total": 2,
            "answered": 0,
            "talkTime": 0,
            "avgTalkTime": 0.0,
            "maxTalkTime": 0,
            "byStatus": {"NO ANSWER": 2},
        }
    ]
    as_csv = query(*args, "--csv").stdout.splitlines()
    assert as_csv == [
        "period,user,total,answered,talkTime,avgTalkTime,maxTalkTime,byStatus",
        "2018-07-29,137,2,0,0,0.0,0,NO ANSWER=2",
    ]


def test_extended_fields_in_csv(query):
    result = query("user", "137", *WINDOW, "--csv", "--extended")
    assert result.exit_code == 0, result.output
    header, first = result.stdout.splitlines()[:2]
    assert header.startswith("callDate,callId,user,phoneNumber,callType,callStatus,duration,")
    row = dict(zip(header.split(","), first.split(","), strict=True))
    assert (row["callId"], row["duration"], row["billsec"], row["direction"]) == (
        "1532857052.131132",
        "30",
        "0",
        "OUTBOUND",
    )
