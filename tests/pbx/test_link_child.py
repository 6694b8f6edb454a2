"""`voip24h serve` runs the PBX link in a `voip24h pbx` child process: the link's events
reach the outbox, a child that dies is started again, and stopping the server stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.live_server import free_port
from tests.pbx.ami_peer import Transcript, peer_in_thread
from voip24h.config import Settings
from voip24h.db.queries.events import events_for_partner
from voip24h.domain.partners import Scope

ROOT = Path(__file__).resolve().parents[2]


def until(condition: Callable[[], Any], seconds: float = 60.0) -> Any:  # a loaded CI machine
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return value


def link_children(pid: int) -> list[int]:
    """The `voip24h pbx` processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == pid and argv[-3:] == [b"voip24h", b"pbx", b""]:
            found.append(int(entry.name))
    return found


def live_events(engine: Any) -> list[Any]:
    """The outbox now (a fresh connection: a MySQL snapshot would not see new rows)."""
    with engine.connect() as conn:
        return list(events_for_partner(conn, Scope(), 0, 10))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_runs_the_link_in_a_child_that_is_restarted_and_stopped_with_it(
    settings: Settings, engine: Any, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    transcript = Transcript.load("queue_call")
    with log.open("wb") as output, peer_in_thread(transcript, reuse_steps=True) as peer:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "VOIP24H_AMI_URL": peer.url,
            "VOIP24H_LOG_LEVEL": "warning",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "voip24h", "serve", "--db", settings.database_url,
             "--port", str(free_port())],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            [child] = until(lambda: link_children(server.pid))
            until(lambda: peer.logins == 1)
            until(lambda: len(live_events(engine)) >= 5)
            os.kill(child, signal.SIGKILL)  # a crash: serve starts another one
            [again] = until(lambda: [p for p in link_children(server.pid) if p != child])
            until(lambda: peer.logins == 2)
            server.terminate()
            assert server.wait(30) in (0, 128 + signal.SIGTERM), log.read_text()
            assert not alive(again), log.read_text()  # stopped before serve returned
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
