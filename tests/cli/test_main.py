"""The operator's command line: db, partner, demo and settings (CliRunner, exact output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.cli.main import cli
from voip24h.config import load_settings
from voip24h.db.schema import call_records, partner_secrets
from voip24h.domain.partners import hash_secret
from voip24h.server.app import create_app


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def test_partner_lifecycle(db_url, engine):
    added = run(
        "partner",
        "add",
        "acme-crm",
        "--accountcode",
        "acme",
        "--extensions",
        "100-199,205",
        "--db",
        db_url,
        "--json",
    )
    assert added.exit_code == 0, added.output
    assert added.stderr.startswith("Warning: no call has accountcode 'acme' yet")
    issued = json.loads(added.stdout)  # the warning goes to stderr, the JSON stays clean
    assert set(issued) == {"name", "secret"} and issued["name"] == "acme-crm"
    assert len(issued["secret"]) >= 32
    with engine.connect() as conn:
        stored = list(conn.scalars(select(partner_secrets.c.secret_hash)))
    assert stored == [hash_secret(issued["secret"])]  # only the hash is stored

    shown = json.loads(run("partner", "show", "acme-crm", "--db", db_url, "--json").output)
    assert shown["accountcodes"] == ["acme"] and shown["extensions"] == "100-199,205"
    assert [s["active"] for s in shown["secrets"]] == [True]
    assert issued["secret"] not in json.dumps(shown)

    rotated = json.loads(
        run("partner", "rotate", "acme-crm", "--overlap", "0", "--db", db_url, "--json").output
    )
    assert rotated["secret"] != issued["secret"]
    shown = json.loads(run("partner", "show", "acme-crm", "--db", db_url, "--json").output)
    assert [s["active"] for s in shown["secrets"]] == [False, True]

    listed = json.loads(run("partner", "list", "--db", db_url, "--json").output)
    assert [(p["name"], p["active_secrets"], p["revoked"]) for p in listed] == [
        ("acme-crm", 1, False)
    ]

    revoked = run("partner", "revoke", "acme-crm", "--db", db_url)
    assert revoked.output == "Partner 'acme-crm' revoked: its secrets no longer work.\n"
    listed = json.loads(run("partner", "list", "--db", db_url, "--json").output)
    assert listed[0]["revoked"] is True and listed[0]["active_secrets"] == 0


def test_revoking_twice_says_it_already_was_and_changes_nothing(db_url):
    run("partner", "add", "acme-crm", "--db", db_url)
    run("partner", "revoke", "acme-crm", "--db", db_url)
    first = json.loads(run("partner", "show", "acme-crm", "--db", db_url, "--json").output)

    again = run("partner", "revoke", "acme-crm", "--db", db_url)

    when = first["revoked_at"].replace("T", " ")[:19]
    assert again.exit_code == 0
    assert again.output == (
        f"Partner 'acme-crm' was already revoked on {when} UTC; nothing changed.\n"
    )
    shown = json.loads(run("partner", "show", "acme-crm", "--db", db_url, "--json").output)
    assert shown["revoked_at"] == first["revoked_at"]


@pytest.mark.parametrize(
    ("overlap", "note"),
    [
        ("0", "The old secrets stopped working now."),
        ("30m", "The old secrets keep working for 30m."),
    ],
)
def test_rotate_says_when_the_old_secrets_stop(db_url, overlap, note):
    run("partner", "add", "acme-crm", "--db", db_url)
    result = run("partner", "rotate", "acme-crm", "--overlap", overlap, "--db", db_url)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "New secret for partner 'acme-crm'. Its secret, shown only this once:"
    assert lines[-1] == note


def test_partner_add_prints_secret_once_in_words(db_url):
    result = run("partner", "add", "billing", "--db", db_url)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "Added for partner 'billing'. Its secret, shown only this once:"
    assert lines[2].strip() and len(lines[2].strip()) >= 32


def test_import_existing_secret_from_stdin(db_url, add_partner, post, load):
    load(cdr_row())
    result = run(
        "partner", "add", "legacy", "--secret", "-", "--db", db_url, input="rdn7mllWMqND7S5DnVz8\n"
    )
    assert result.exit_code == 0, result.output
    assert "rdn7mllWMqND7S5DnVz8" in result.output
    assert post("getUser", "rdn7mllWMqND7S5DnVz8", {"user": "137"}).json()["respCode"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["partner", "add", "x", "--secret", "short"],
            "Error: --secret: a secret must have at least 16 characters\n",
        ),
        (
            ["partner", "add", "x", "--extensions", "199-100"],
            "Error: --extensions: extension range '199-100' runs backwards\n",
        ),
        (["partner", "show", "nobody"], "Error: no partner named 'nobody'\n"),
        (["partner", "rotate", "nobody"], "Error: no partner named 'nobody'\n"),
        (["partner", "revoke", "nobody"], "Error: no partner named 'nobody'\n"),
    ],
)
def test_partner_errors_are_one_line(db_url, args, message):
    result = run(*args, "--db", db_url)
    assert result.exit_code == 1
    assert result.output == message


def test_duplicate_partner_and_secret_are_refused(db_url):
    run("partner", "add", "a", "--secret", "rdn7mllWMqND7S5DnVz8", "--db", db_url)
    again = run("partner", "add", "a", "--db", db_url)
    assert again.output == "Error: a partner named 'a' already exists\n"
    same_secret = run("partner", "add", "b", "--secret", "rdn7mllWMqND7S5DnVz8", "--db", db_url)
    assert same_secret.output == "Error: that secret is already held by a partner\n"


def test_bad_overlap_is_a_usage_error(db_url):
    run("partner", "add", "a", "--db", db_url)
    result = run("partner", "rotate", "a", "--overlap", "soon", "--db", db_url)
    assert result.exit_code == 2
    assert (
        "Invalid value for --overlap: 'soon' is not a duration like 24h, 30m, 2d" in result.output
    )


def test_db_upgrade_is_idempotent_and_reports(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = run("db", "upgrade", "--db", url)
    assert first.exit_code == 0 and first.output.startswith(
        "schema upgraded from empty to revision"
    )
    second = run("db", "upgrade", "--db", url)
    assert second.output.startswith("schema is current (revision")


def test_reindex_rebuilds_the_same_records(db_url, engine, load):
    load(cdr_row(), cdr_row(uniqueid="2.2", src="101", dst="102", dstchannel="PJSIP/102-1"))
    with engine.connect() as conn:
        before = sorted(map(tuple, conn.execute(select(call_records))))
        conn.execute(call_records.delete())
        conn.commit()
    result = run("db", "reindex", "--db", db_url, "--quiet")
    assert result.output == "reindexed: 3 call records\n"
    with engine.connect() as conn:
        assert sorted(map(tuple, conn.execute(select(call_records)))) == before


def test_changing_the_time_zone_requires_a_reindex(db_url, engine, load, tmp_path):
    load(cdr_row())
    csv = tmp_path / "Master.csv"
    csv.write_text("")
    env = {"VOIP24H_TIMEZONE": "Europe/Paris"}
    result = run("import", str(csv), "--db", db_url, env=env)
    assert result.exit_code == 3  # import's documented "cannot start" code
    assert "run `voip24h db reindex`" in result.output
    assert run("db", "reindex", "--db", db_url, "--quiet", env=env).exit_code == 0
    with engine.connect() as conn:
        ts = conn.scalar(select(func.min(call_records.c.call_ts)))
    assert ts == 1532857052 + 5 * 3600  # 16:37:32 in Paris (UTC+2) instead of UTC+7


def test_unknown_database_scheme_is_a_clear_error():
    result = run("partner", "list", "--db", "oracle://x/y")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unsupported database 'oracle'")


def test_bad_setting_in_environment_is_a_clear_error(db_url):
    result = run("partner", "list", "--db", db_url, env={"VOIP24H_TIMEZONE": "Mars/Olympus"})
    assert result.output == "Error: timezone: unknown time zone 'Mars/Olympus'\n"


def test_serve_refuses_an_old_schema(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")  # a file SQLite opens, with no tables
    result = run("serve", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.exit_code == 1
    assert result.output == (
        "Error: the database schema is not current: run `voip24h db upgrade` first\n"
    )


def test_settings_lists_every_setting():
    from voip24h.config import describe

    out = json.loads(run("settings", "--json").output)
    assert [s["name"] for s in out] == [name for name, *_ in describe()]
    assert all(s["env"].startswith("VOIP24H_") and s["help"] for s in out)


def test_demo_fills_a_database_and_prints_a_working_curl(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run("demo", "--db", url, "--calls", "300", "--no-serve")
    assert result.exit_code == 0, result.output
    curl = next(line for line in result.output.splitlines() if line.startswith("curl "))
    assert "/api/v1/partner/voip24h" in curl and "getUserDate" in curl
    again = run("demo", "--db", url, "--calls", "300", "--no-serve")
    assert "0 new CDR rows" in again.output  # idempotent
    secret = next(line for line in again.output.splitlines() if "Its secret:" in line).split()[-1]
    assert secret not in result.output  # a fresh secret each run


def test_demo_prints_both_partners_secrets_and_the_docs_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run("demo", "--db", url, "--calls", "300", "--no-serve")
    lines = result.output.splitlines()
    secrets = {
        line.split()[1].strip("'"): line.split()[-1] for line in lines if "Its secret:" in line
    }
    assert set(secrets) == {"demo", "acme-crm"}
    assert "Partner 'acme-crm' sees tenant acme, extensions 100-199 only." in result.output
    assert [line for line in lines if line][-1] == (
        "Every request type, tried in the browser: http://127.0.0.1:8024/docs "
        "(the OpenAPI document is /openapi.json)"
    )
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    window = {
        "fromDate": (today - timedelta(days=30)).strftime("%d/%m/%Y"),
        "toDate": today.strftime("%d/%m/%Y"),
    }
    app = create_app(load_settings({"database_url": url}, environ={}))
    with TestClient(app) as client:
        answers = {
            name: client.post(
                API,
                json={"requestType": "getDate", "partnerSecret": secret, "data": window},
            ).json()
            for name, secret in secrets.items()
        }
    assert answers["demo"]["respCode"] == 0 and answers["acme-crm"]["respCode"] == 0
    users = {r["user"] for r in answers["acme-crm"]["data"]}
    assert users and all(100 <= int(u) <= 199 for u in users)
    assert len(answers["demo"]["data"]) > len(answers["acme-crm"]["data"])


@pytest.mark.parametrize(
    ("spec", "wrong"), [("abc", "abc"), ("101,1x", "1x"), ("100-1999999", "1999999")]
)
def test_extensions_no_user_can_match_are_refused(db_url, spec, wrong):
    result = run("partner", "add", "weird", "--extensions", spec, "--db", db_url)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --extensions: {wrong!r} is not an extension of this PBX "
        "(see the extension_pattern and extensions settings)\n"
    )
    listed = json.loads(run("partner", "list", "--db", db_url, "--json").output)
    assert listed == []


def test_an_accountcode_without_calls_is_added_with_a_warning_naming_the_known_ones(
    db_url, load
):
    load(cdr_row(accountcode="acme", uniqueid="1.1"), cdr_row(accountcode="globex", uniqueid="1.2"))
    result = CliRunner().invoke(
        cli, ["partner", "add", "p", "--accountcode", "nosuchtenant", "--db", db_url]
    )
    assert result.exit_code == 0
    assert result.stderr == (
        "Warning: no call has accountcode 'nosuchtenant' yet, so this partner sees nothing "
        "of it until one does. Accountcodes in the calls: acme, globex.\n"
    )
    quiet = CliRunner().invoke(
        cli, ["partner", "add", "q", "--accountcode", "acme", "--db", db_url]
    )
    assert (quiet.exit_code, quiet.stderr) == (0, "")


def test_help_imports_no_database_or_http_library():
    """`voip24h --help` is quick: SQLAlchemy, Starlette, uvicorn and httpx stay unloaded."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['voip24h', '--help']\n"
        "try:\n    runpy.run_module('voip24h', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('sqlalchemy', 'starlette', 'uvicorn', 'httpx', 'rich')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_help_lists_the_lazy_commands_as_they_describe_themselves():
    from voip24h.cli import main as cli_main

    quick = CliRunner().invoke(cli, ["--help"]).output
    for name in cli_main.LAZY_COMMANDS:
        cli.get_command(click.Context(cli), name)  # load every command, as running one does
    loaded = CliRunner().invoke(cli, ["--help"]).output
    assert quick == loaded
    for name, text in cli_main.LAZY_SHORT_HELP.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.help is not None
        assert text.split() == command.help.split("\n\n")[0].split()


NEVER_UPGRADED = [
    ["serve"],
    ["import", "Master.csv"],
    ["db", "reindex"],
    ["partner", "list"],
    ["partner", "add", "crm"],
    ["partner", "show", "crm"],
    ["audit", "list"],
]


@pytest.mark.parametrize("args", NEVER_UPGRADED, ids=" ".join)
def test_a_database_never_created_gets_one_message_and_no_file(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Master.csv").write_text("")
    result = CliRunner().invoke(cli, [*args, "--db", "sqlite:///voip24h.db"])
    assert result.exit_code != 0
    assert result.output.splitlines()[-1] == (
        "Error: there is no database at voip24h.db yet: run `voip24h db upgrade` to create it"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Master.csv"]


@pytest.mark.parametrize("args", NEVER_UPGRADED, ids=" ".join)
def test_a_database_never_upgraded_gets_one_message(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Master.csv").write_text("")
    (tmp_path / "voip24h.db").write_bytes(b"")
    result = CliRunner().invoke(cli, [*args, "--db", "sqlite:///voip24h.db"])
    assert result.exit_code != 0
    assert result.output.splitlines()[-1] == (
        "Error: the database schema is not current: run `voip24h db upgrade` first"
    )


def test_demo_recording_downloads_as_a_playable_wav(tmp_path, monkeypatch):
    """recordingDownload of the seed call, as README and docs/examples.md show it."""
    import io
    import wave

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run("demo", "--db", url, "--calls", "20", "--no-serve")
    line = next(line for line in result.output.splitlines() if "'demo' sees" in line)
    settings = load_settings(
        {"database_url": url, "recordings_dir": str(tmp_path / "voip24h-demo-recordings")},
        environ={},
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            API,
            json={
                "requestType": "recordingDownload",
                "partnerSecret": line.split()[-1],
                "data": {"callId": "1532857052.131132"},
            },
        ).json()
        assert answer["respCode"] == 0, answer
        response = client.get(answer["data"]["link"])
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment")
    assert "1532857052.131132.wav" in response.headers["content-disposition"]
    with wave.open(io.BytesIO(response.content)) as played:
        assert (played.getframerate(), played.getnframes()) == (8000, 8000)
