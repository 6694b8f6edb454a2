"""The PBX link as a job: one holder per database, a refused login retried, never a crash."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import pytest

from tests.conftest import API
from tests.pbx.ami_peer import AmiPeer, Transcript, peer_in_thread
from voip24h.config import Settings
from voip24h.db.queries.events import events_for_partner
from voip24h.domain.partners import Scope
from voip24h.pbx.backoff import Backoff
from voip24h.pbx.runner import PbxRunner


async def until(condition: Any, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


def test_two_processes_elect_one_link_and_the_other_takes_over_when_it_stops(
    settings: Settings, engine: Any
) -> None:
    async def main() -> None:
        async with AmiPeer(Transcript.load("queue_call")) as peer:
            config = settings.replace(ami_url=peer.url)
            runners = [
                PbxRunner(
                    config, engine, holder=name, lease_seconds=2.0, backoff=Backoff(0.01, 0.05)
                )
                for name in ("first", "second")
            ]
            tasks = [asyncio.create_task(r.run()) for r in runners]
            await until(lambda: sum(r.outbox.written for r in runners) >= 5)
            await asyncio.sleep(0.8)  # past a renewal: the other one must still wait
            assert [r.leader for r in runners].count(True) == 1
            assert peer.connections == 1
            leader, follower = runners if runners[0].leader else runners[::-1]
            leader.stop()
            async with asyncio.timeout(10):  # a stop that never ends fails, never hangs
                await tasks[runners.index(leader)]
            await until(lambda: follower.leader and peer.logins == 2)
            follower.stop()
            async with asyncio.timeout(10):
                await tasks[runners.index(follower)]
            [login, *_] = peer.actions("Login")
            assert b"\r\nEvents: call,cdr\r\n" in login  # not dialplan's VarSet flood

    asyncio.run(main())
    with engine.connect() as conn:
        first_call = events_for_partner(conn, Scope(), 0, 5)
    assert [e["type"] for e in first_call] == [
        "call.ringing",
        "call.ringing",
        "call.answered",
        "call.ended",
        "call.ended",
    ]


def test_a_wrong_ami_password_is_one_clear_error_and_retries_never_a_crash(
    settings: Settings, engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[AmiPeer, PbxRunner]:
        async with AmiPeer(secret="amipass") as peer:
            runner = PbxRunner(
                settings.replace(ami_url=peer.url_with("wrong-pass")),
                engine,
                lease_seconds=0.3,
                backoff=Backoff(0.02, 0.16),
            )
            task = asyncio.create_task(runner.run())
            await asyncio.sleep(0.8)
            assert not task.done() and runner.leader  # still trying, still the holder
            runner.stop()
            await task
            return peer, runner

    with caplog.at_level(logging.INFO, logger="voip24h.pbx"):
        peer, _ = asyncio.run(main())
    assert peer.logins == 0 and 3 <= len(peer.login_attempts) <= 12
    gaps = [b - a for a, b in itertools.pairwise(peer.login_attempts)]
    assert min(gaps) >= 0.009 and gaps[-1] > gaps[0]  # backing off, not a hot loop
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "AMI login refused for user 'admin'" in errors[0]
    assert "wrong-pass" not in caplog.text


def test_serve_answers_partners_while_the_pbx_refuses_its_login(
    make_client: Any, add_partner: Any, load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    load(
        {
            "uniqueid": "1.1",
            "channel": "SIP/101-1",
            "dstchannel": "SIP/trunk-2",
            "dst": "0987654321",
            "src": "101",
            "disposition": "ANSWERED",
            "start": "2026-12-01 08:00:00",
            "billsec": 5,
            "duration": 7,
            "lastapp": "Dial",
        }
    )
    secret = add_partner()
    with (
        caplog.at_level(logging.INFO, logger="voip24h.pbx"),
        peer_in_thread(secret="amipass") as peer,
    ):
        client = make_client(ami_url=peer.url_with("wrong-pass"))
        started = time.monotonic()
        while len(peer.login_attempts) < 2 and time.monotonic() - started < 10:
            answer = client.post(
                API,
                json={"requestType": "getUser", "partnerSecret": secret, "data": {"user": "101"}},
            )
            assert answer.status_code == 200 and len(answer.json()["data"]) == 1
            time.sleep(0.05)
        assert len(peer.login_attempts) >= 2 and peer.logins == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "AMI login refused" in errors[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the PBX's manager interface: --ami-url or VOIP24H_AMI_URL"),
        (["--ami-url", "http://pbx:5038"], "ami_url: must start with ami:// or amis://"),
        (["--ami-url", "ami://pbx:5038"], "ami_url: ami_url needs a user and a secret"),
    ],
)
def test_voip24h_pbx_refuses_a_missing_or_broken_ami_url_in_one_line(
    args: list[str], message: str, tmp_path: Any
) -> None:
    from click.testing import CliRunner

    from voip24h.cli.main import cli

    result = CliRunner().invoke(
        cli, ["pbx", "--db", f"sqlite:///{tmp_path}/x.db", *args], env={"VOIP24H_AMI_URL": None}
    )
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.db").exists()


def test_serve_leaves_the_link_to_voip24h_pbx_when_told_to(tmp_path: Any) -> None:
    from voip24h.pbx.runner import runner_for

    url = f"sqlite:///{tmp_path}/x.db"
    base = Settings(database_url=url, ami_url="ami://u:s@127.0.0.1:5038")
    assert runner_for(Settings(database_url=url)) is None
    assert runner_for(base.replace(pbx_link_in_serve=False)) is None
    inside = runner_for(base)
    assert isinstance(inside, PbxRunner) and inside.target.port == 5038


def test_voip24h_pbx_writes_a_replayed_call_to_the_outbox_and_stops_on_sigterm(
    tmp_path: Any,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from voip24h.db import migrate
    from voip24h.db.engine import make_engine

    url = f"sqlite:///{tmp_path}/pbx.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    try:
        with peer_in_thread(Transcript.load("queue_call")) as peer:
            child = subprocess.Popen(
                [sys.executable, "-m", "voip24h", "pbx", "--db", url, "--ami-url", peer.url],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "VOIP24H_CONFIG": ""},
            )  # fmt: skip
            deadline, got = time.monotonic() + 20, []
            while len(got) < 5 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.1)
                with engine.connect() as conn:
                    got = events_for_partner(conn, Scope(), 0, 100)
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=20)
    finally:
        engine.dispose()
    assert [e["type"] for e in got] == [
        "call.ringing",
        "call.ringing",
        "call.answered",
        "call.ended",
        "call.ended",
    ]
    assert child.returncode == 0, err.decode()[-1000:]
    assert "PBX link to ami://admin:***@127.0.0.1" in err.decode()
    assert "amipass" not in err.decode()
