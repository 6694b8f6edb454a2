"""Schemathesis (its own runner, every default check) against the served /openapi.json,
with a valid secret and without: a fixed seed, a bounded number of examples, zero
failures. positive_data_acceptance is replaced by tests/server/fuzz_checks.py (see there).
The event stream (operation eventsStream) is left out: a valid request opens a stream that
never ends; tests/server/test_openapi.py checks its refusals against the document."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.builders import cdr_row
from voip24h.server.app import create_app

EXAMPLES = 25
SEED = "20261127"
ROOT = Path(__file__).resolve().parents[2]
# The HTTP contract is the same on every backend (the isolation and fault tests cover
# those on all three); fuzzing one keeps this run at ~40 s.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def served(settings, load, add_partner) -> Iterator[tuple[str, str]]:
    """A real server on a loopback port over the test database: (base URL, secret)."""
    load(cdr_row(uniqueid="1532857052.131132"), cdr_row(uniqueid="1532834934.130789"))
    secret = add_partner("fuzz")
    app = create_app(
        settings.replace(rate_limit_per_second=0, auth_failures_per_minute=0, audit_enabled=False)
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", secret
    server.should_exit = True
    thread.join(10)


def schemathesis_run(base: str, workdir: Path, *extra: str) -> None:
    st = Path(sys.executable).with_name("st")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.server.fuzz_checks", "PYTHONPATH": str(ROOT)}
    command = [
        str(st), "run", f"{base}/openapi.json",
        "--seed", SEED, "--max-examples", str(EXAMPLES),
        "--exclude-checks", "positive_data_acceptance",
        "--exclude-operation-id", "eventsStream",
        "--no-color", *extra,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_openapi_conformance_with_a_valid_secret(served, tmp_path):
    base, secret = served
    schemathesis_run(base, tmp_path, "-H", f"Authorization: Bearer {secret}")


@pytest.mark.slow
def test_openapi_conformance_without_a_secret(served, tmp_path):
    base, _secret = served
    schemathesis_run(base, tmp_path)  # its replay files go there, not into the repository
