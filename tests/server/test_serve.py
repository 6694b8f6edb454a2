"""`voip24h serve` as operators run it: a real process on a real socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from tests.live_server import free_port, post_when_up


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_over_a_socket_and_stops_cleanly(tmp_path, workers):
    from voip24h.config import load_settings
    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.domain import cdr
    from voip24h.ingest.loader import Loader
    from voip24h.service import partner_admin

    url = f"sqlite:///{tmp_path / 'serve.db'}"
    settings = load_settings({"database_url": url}, environ={})
    engine = make_engine(url)
    migrate.upgrade(engine)
    loader = Loader(engine, settings)
    loader.check_ready()
    loader.load([cdr.normalize(cdr_row(), settings.zone)])
    secret = partner_admin.add(engine, "crm", [], []).secret
    engine.dispose()

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP24H_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voip24h",
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
        response = post_when_up(port, proc, body, within=30, timeout=5, path=API)
        assert response.status_code == 200
        assert [r["callId"] for r in response.json()["data"]] == ["1532857052.131132"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM (or exits 0 with workers).
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output or "Finished server process" in output
    assert secret not in output  # secrets never reach the logs
