"""The partner examples in examples/ run against a live server and print what they should.

curl, Python (stdlib and voip24h.client) and Node.js always run; PHP runs where `php`
is installed (Debian: apt-get install php-cli) and is skipped with that reason otherwise.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.live_server import LiveServer, live_server
from voip24h.cli.main import cli
from voip24h.config import load_settings
from voip24h.db.engine import make_engine
from voip24h.domain import cdr
from voip24h.ingest.loader import Loader
from voip24h.server.app import create_app
from voip24h.service import partner_admin
from voip24h.wire import protocol

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIELDS = ("callDate", "callId", "user", "phoneNumber", "callType", "callStatus")
STATS_FIELDS = ("period", "user", "total", "answered", "talkTime")

# What examples/Master.csv holds, as the examples print it (tab-separated, newest first).
EXPECTED = {
    ("getUser", "101"): [
        "2018-07-28 15:45:00\t1532767500.128005\t101\t0938111222\tEXTERNAL\tANSWERED",
        "2018-07-27 11:30:00\t1532665800.127004\t101\t137\tINTERNAL\tANSWERED",
        "2018-07-26 10:00:00\t1532574000.126003\t101\t0987654321\tEXTERNAL\tNO ANSWER",
    ],
    ("getDate", "26/07/2018", "26/07/2018"): [
        "2018-07-26 10:00:01\t1532574000.126003\t102\t0987654321\tEXTERNAL\tANSWERED",
        "2018-07-26 10:00:00\t1532574000.126003\t101\t0987654321\tEXTERNAL\tNO ANSWER",
    ],
    ("getUserDate", "137", "01/07/2018", "30/07/2018"): [
        "2018-07-29 16:37:32\t1532857052.131132\t137\t0982056720\tEXTERNAL\tNO ANSWER",
        "2018-07-29 10:28:54\t1532834934.130789\t137\t0971828252\tEXTERNAL\tNO ANSWER",
        "2018-07-28 15:45:42\t1532767500.128005\t137\t0938111222\tEXTERNAL\tANSWERED",
        "2018-07-27 11:30:00\t1532665800.127004\t137\t101\tINTERNAL\tANSWERED",
        "2018-07-25 14:03:10\t1532502190.125002\t137\t0912345678\tEXTERNAL\tANSWERED",
        "2018-07-20 09:12:05\t1532052725.120001\t137\t0903123456\tEXTERNAL\tANSWERED",
    ],
}
if "getCallData" in protocol.DATA_TYPES:
    EXPECTED[("getCallData", "1532767500.128005")] = [
        "2018-07-28 15:45:42\t1532767500.128005\t137\t0938111222\tEXTERNAL\tANSWERED",
        "2018-07-28 15:45:00\t1532767500.128005\t101\t0938111222\tEXTERNAL\tANSWERED",
    ]
EXPECTED[("getStats", "01/07/2018", "30/07/2018")] = [  # period, user, total, answered, talkTime
    "2018-07-26\t101\t1\t0\t0",
    "2018-07-27\t101\t1\t1\t45",
    "2018-07-28\t101\t1\t1\t30",
    "2018-07-26\t102\t1\t1\t210",
    "2018-07-20\t137\t1\t1\t125",
    "2018-07-25\t137\t1\t1\t64",
    "2018-07-27\t137\t1\t1\t45",
    "2018-07-28\t137\t1\t1\t95",
    "2018-07-29\t137\t2\t0\t0",
]
RECORDING_CALL = "1529460000.900001"
RECORDING_FILE = "out-138-0909000111-20180620-090000-1529460000.900001.wav"
RECORDED_ROW = {
    "calldate": "2018-06-20 09:00:00",
    "uniqueid": RECORDING_CALL,
    "linkedid": RECORDING_CALL,
    "src": "138",
    "dst": "0909000111",
    "channel": "PJSIP/138-000000a0",
    "dstchannel": "PJSIP/viettel-trunk-000000a1",
    "disposition": "ANSWERED",
    "duration": 70,
    "billsec": 61,
    "accountcode": "acme",
    "recordingfile": RECORDING_FILE,
}
BAD = ("getUser", "1x")
BAD_MESSAGE = "error invalid_user (HTTP 400): user '1x' is not an extension number of this PBX."


def _command(language: str, args: tuple[str, ...]) -> list[str]:
    if language == "curl":
        return ["sh", str(EXAMPLES / "curl" / f"{args[0]}.sh"), *args[1:]]
    if language == "python":
        return [sys.executable, str(EXAMPLES / "python" / "partner.py"), *args]
    if language == "python-client":
        return [sys.executable, str(EXAMPLES / "python" / "with_client.py"), *args]
    if language == "node":
        return ["node", str(EXAMPLES / "node" / "partner.mjs"), *args]
    return ["php", str(EXAMPLES / "php" / "partner.php"), *args]


LANGUAGES = [
    pytest.param("curl"),
    pytest.param("python"),
    pytest.param("python-client"),
    pytest.param(
        "node",
        marks=pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    ),
    pytest.param(
        "php",
        marks=pytest.mark.skipif(
            shutil.which("php") is None,
            reason="php is not installed (Debian: apt-get install php-cli)",
        ),
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server on a database loaded from examples/Master.csv by `voip24h import`."""
    url = f"sqlite:///{tmp_path_factory.mktemp('examples') / 'voip24h.db'}"
    runner = CliRunner()
    for args in (
        ["db", "upgrade", "--db", url],
        ["import", str(EXAMPLES / "Master.csv"), "--db", url],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    monitor = tmp_path_factory.mktemp("monitor")
    (monitor / "2018" / "06" / "20").mkdir(parents=True)
    (monitor / "2018" / "06" / "20" / RECORDING_FILE).write_bytes(b"RIFF-example")
    settings = load_settings({"database_url": url, "recordings_dir": str(monitor)}, environ={})
    engine = make_engine(url)
    # FreePBX keeps recordingfile in its cdr table, not in Master.csv: one such row.
    Loader(engine, settings).load([cdr.normalize(RECORDED_ROW, settings.zone)])
    secret = partner_admin.add(engine, "examples", [], [], None).secret
    engine.dispose()
    with live_server(create_app(settings)) as live:
        yield live, secret


def _run(server: tuple[LiveServer, str], language: str, args: tuple[str, ...]):
    live, secret = server
    env = {**os.environ, "VOIP24H_URL": live.url, "VOIP24H_PARTNER_SECRET": secret}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run(
        _command(language, args), env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("args", list(EXPECTED), ids=[a[0] for a in EXPECTED])
def test_each_request_type(server, language, args):
    result = _run(server, language, args)
    assert result.returncode == 0, result.stderr
    if language == "curl":
        answer = json.loads(result.stdout)
        assert answer["respCode"] == 0 and answer["respMsg"] == "Success"
        fields = STATS_FIELDS if args[0] == "getStats" else FIELDS
        lines = ["\t".join(str(item[name]) for name in fields) for item in answer["data"]]
    else:
        assert result.stderr == ""
        lines = result.stdout.splitlines()
    assert lines == EXPECTED[args]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("request_type", ["recordingListen", "recordingDownload"])
def test_recording_links_open_the_file(server, language, request_type):
    live, _ = server
    result = _run(server, language, (request_type, RECORDING_CALL))
    assert result.returncode == 0, result.stderr
    if language == "curl":
        answer = json.loads(result.stdout)
        assert answer["respCode"] == 0
        link = answer["data"]["link"]
    else:
        link = result.stdout.strip()
    assert link.startswith(live.url + "/api/v1/partner/voip24h/recordings/")
    response = httpx.get(link)  # a signed link needs no secret
    assert response.status_code == 200 and response.content == b"RIFF-example"
    if request_type == "recordingDownload":
        assert "attachment" in response.headers["content-disposition"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_errors_are_reported_with_their_code(server, language):
    result = _run(server, language, BAD)
    if language == "curl":
        assert result.returncode == 0
        assert json.loads(result.stdout) == {
            "respCode": -1,
            "respMsg": "user '1x' is not an extension number of this PBX.",
            "errorCode": "invalid_user",
        }
    else:
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.strip() == BAD_MESSAGE


USAGE = {
    "curl": "usage: getUser.sh USER   (an extension, e.g. 137)\n",
    "python": "usage: python3 partner.py REQUEST_TYPE ARGS...\n",
    "node": "usage: node partner.mjs REQUEST_TYPE ARGS...\n",
    "python-client": "usage: with_client.py REQUEST_TYPE ARGS...   (as partner.py)\n",
}


@pytest.mark.parametrize("language", [p for p in LANGUAGES if p.values[0] in USAGE])
def test_without_arguments_an_example_prints_its_usage_and_exits_2(server, language):
    args: tuple[str, ...] = ("getUser",) if language == "curl" else ()
    result = _run(server, language, args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines(keepends=True)[0] == USAGE[language]
    if language in ("python", "node"):  # the usage lists every request type with its arguments
        assert "  getUserDate user fromDate toDate" in result.stderr.splitlines()


def test_the_client_example_outside_the_venv_says_how_to_run_it(tmp_path):
    """A Python without voip24h installed (no site-packages, nothing on the path)."""
    script = EXAMPLES / "python" / "with_client.py"
    result = subprocess.run(
        [sys.executable, "-S", "-I", str(script), "getUser", "137"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "with_client.py needs the voip24h package: run it with the clone's venv"
    )


def _documented_commands() -> list[str]:
    """Every command line of docs/examples.md's ``sh`` blocks that runs an example."""
    text = (ROOT / "docs" / "examples.md").read_text()
    blocks = text.split("```sh\n")[1:]
    lines = [line for block in blocks for line in block.split("```")[0].splitlines()]
    runners = ("examples/", "python3 ", ".venv/bin/python ", "node ", "php ")
    return [line.split("  #")[0].strip() for line in lines if line.startswith(runners)]


DOCUMENTED = _documented_commands()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A live server on the demo data (`voip24h demo`, its recording included) plus
    examples/Master.csv, as the tutorial's step 4 leaves it; the secret of partner demo."""
    home = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{home / 'voip24h-demo.db'}"
    recordings = str(home / "recordings")
    runner = CliRunner()
    shown = runner.invoke(cli, ["demo", "--db", url, "--recordings", recordings, "--no-serve"])
    assert shown.exit_code == 0, shown.output
    secret = next(line for line in shown.output.splitlines() if "'demo' sees" in line).split()[-1]
    loaded = runner.invoke(cli, ["import", str(EXAMPLES / "Master.csv"), "--db", url])
    assert loaded.exit_code == 0, loaded.output
    settings = load_settings({"database_url": url, "recordings_dir": recordings}, environ={})
    with live_server(create_app(settings)) as live:
        yield live, secret


@pytest.mark.parametrize("command", DOCUMENTED)
def test_every_command_of_docs_examples_runs_as_documented(demo_server, command):
    """Run from the repository root as the page says; `.venv/bin/python` is this test's
    Python (a worktree may have no .venv of its own)."""
    program = command.split()[0]
    if program in ("node", "php") and shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    live, secret = demo_server
    env = {**os.environ, "VOIP24H_URL": live.url, "VOIP24H_PARTNER_SECRET": secret}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    if program == ".venv/bin/python":
        command = command.replace(".venv/bin/python", shlex.quote(sys.executable), 1)
    result = subprocess.run(
        command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if program.startswith("examples/curl/"):
        answer = json.loads(result.stdout)
        assert answer["respCode"] == 0, answer
        data = answer["data"]
        if "recording" in command:
            assert httpx.get(data["link"]).status_code == 200  # the demo's WAV
        else:
            assert data, "the demo data answers every documented request"
    else:
        assert result.stdout.strip(), "the demo data answers every documented request"


def test_docs_examples_shows_a_command_for_every_example():
    """The page's blocks cover every example in examples/ (so the test above runs them all)."""
    shown = " ".join(DOCUMENTED)
    for name in ("curl/getUser.sh", "python/partner.py", "python/with_client.py",
                 "node/partner.mjs", "php/partner.php"):
        assert f"examples/{name}" in shown
