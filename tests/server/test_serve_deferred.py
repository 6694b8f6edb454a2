"""`voip24h serve` on a database whose deferred indexes cannot be built: it serves anyway.

A first import deferred the read-side indexes (db/indexes.py) and the disk filled
before it could build them. Was: serve tried to build them before serving, failed and
exited 1. Now it logs once what to run and serves reads. The full disk is made real
with a file-size limit on the server process (RLIMIT_FSIZE, SIGXFSZ ignored): every
write past 256 KiB fails, so the index build cannot write its pages.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from tests.builders import cdr_row
from tests.conftest import API
from tests.live_server import free_port, post_when_up

LIMIT = 256 * 1024


def small_disk() -> None:
    """In the server process: writes beyond LIMIT bytes of any file fail (EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as Linux applies it")
def test_serve_starts_without_the_deferred_indexes_and_says_what_to_run(tmp_path):
    from voip24h.config import load_settings
    from voip24h.db import indexes, migrate
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
    start = datetime(2018, 7, 29, 8, 0, 0)
    rows = [
        cdr.normalize(
            cdr_row(calldate=start + timedelta(minutes=n), uniqueid=f"1532826000.{n}"),
            settings.zone,
        )
        for n in range(8000)
    ]
    loader.load(rows)
    secret = partner_admin.add(engine, "crm", [], []).secret
    indexes.defer(engine)  # as a first import leaves them until its end
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")  # the file holds the table alone now
    engine.dispose()
    assert os.path.getsize(tmp_path / "serve.db") > LIMIT

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP24H_")}
    env["VOIP24H_AUDIT_DATABASE_URL"] = ""
    proc = subprocess.Popen(
        [sys.executable, "-m", "voip24h", "serve", "--db", url, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=small_disk,
    )
    try:
        body = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
        response = post_when_up(port, proc, body, within=60, timeout=10, path=API)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 8000
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, errors = proc.communicate(timeout=30)
    warnings = [
        json.loads(line)
        for line in errors.splitlines()
        if line.startswith("{") and "deferred could not be built" in line
    ]
    assert len(warnings) == 1, errors
    assert warnings[0]["level"] == "warning"
    assert "run `voip24h db upgrade`" in warnings[0]["message"]
    engine = make_engine(url)
    try:
        assert indexes.is_deferred(engine)  # still to do, nothing lost
    finally:
        engine.dispose()
