"""The sample receivers of docs/webhooks.md (examples/python, examples/node and
examples/php) verify what the deliverer really sends, refuse a wrong secret, and print
each event (the Python and Node ones once, dropping repeats)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.live_server import free_port, wait_for_port
from tests.support import environment
from voip24h.service.webhooks.signing import generate_secret, signature_headers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECEIVERS = {
    "python": [sys.executable, str(EXAMPLES / "python" / "webhook_receiver.py")],
    "node": ["node", str(EXAMPLES / "node" / "webhook_receiver.mjs")],
}
EVENT = {
    "id": "evt_01JEXAMPLE0000000000000000",
    "type": "record.created",
    "occurredAt": "2026-12-07T10:00:00Z",
    "sequence": 7,
    "data": {"callId": "1532857052.131132", "user": "137", "callStatus": "ANSWERED",
             "duration": 40},
}  # fmt: skip


@pytest.mark.parametrize("language", sorted(RECEIVERS))
def test_the_sample_receiver_verifies_and_drops_repeats(language):
    import httpx

    if shutil.which(RECEIVERS[language][0]) is None:
        pytest.skip(f"{language} is not installed")
    secret, port = generate_secret(), free_port()
    env = {**environment(), "VOIP24H_WEBHOOK_SECRET": secret}
    process = subprocess.Popen(
        [*RECEIVERS[language], str(port)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_for_port(port)
        body = orjson.dumps(EVENT)
        url = f"http://127.0.0.1:{port}/hook"
        good = signature_headers([generate_secret(), secret], EVENT["id"], body)
        bad = signature_headers([generate_secret()], EVENT["id"], body)
        statuses = [httpx.post(url, content=body, headers=h).status_code for h in (good, good, bad)]
        assert statuses == [204, 204, 401]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert out == "7\trecord.created\t1532857052.131132\t137\tANSWERED\t40\n"


def test_the_php_sample_receiver_verifies_signatures():
    """examples/php runs under PHP's own server, one process per request (no memory of
    ids: the docs say to keep them in a database), so it only verifies and prints."""
    import httpx

    if shutil.which("php") is None:
        pytest.skip("php is not installed (Debian: apt-get install php-cli)")
    secret, port = generate_secret(), free_port()
    env = {**environment(), "VOIP24H_WEBHOOK_SECRET": secret}
    process = subprocess.Popen(
        ["php", "-S", f"127.0.0.1:{port}", str(EXAMPLES / "php" / "webhook_receiver.php")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_for_port(port)
        body = orjson.dumps(EVENT)
        url = f"http://127.0.0.1:{port}/hook"
        good = signature_headers([generate_secret(), secret], EVENT["id"], body)
        bad = signature_headers([generate_secret()], EVENT["id"], body)
        statuses = [httpx.post(url, content=body, headers=h).status_code for h in (good, bad)]
        assert statuses == [204, 401]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert out == "7\trecord.created\t1532857052.131132\t137\tANSWERED\t40\n"
