"""The deliverer as operators run it, in real processes on every backend: killed with -9
mid-batch and restarted it loses nothing; two `voip24h serve` processes on one database
deliver each event once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.live_server import free_port, wait_for_port
from tests.support import environment, voip24h
from tests.webhook_receiver import Receiver
from voip24h.db.queries.events import events_for_partner
from voip24h.db.queries.partners import find
from voip24h.domain.partners import Scope
from voip24h.service.answers import scope_from_row
from voip24h.service.webhooks.endpoints import Webhooks

N_CALLS = 120


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(delay=0.01).start()
    yield found
    found.stop()


def rows(n: int) -> list[dict[str, Any]]:
    t0 = datetime(2024, 1, 1, 8, 0, 0)
    return [
        {
            "calldate": t0 + timedelta(seconds=i),
            "src": "101",
            "dst": "0900000000",
            "channel": f"PJSIP/101-{i:08x}",
            "dstchannel": f"PJSIP/trunk-{i:08x}",
            "lastapp": "Dial",
            "duration": 5,
            "billsec": 3,
            "disposition": "ANSWERED",
            "accountcode": "acme",
            "uniqueid": f"1704096000.{i}",
            "linkedid": f"1704096000.{i}",
        }
        for i in range(1, n + 1)
    ]


def setup(settings: Any, engine: Any, add_partner: Any, load: Any, url: str) -> list[str]:
    add_partner("crm", accountcodes=("acme",))
    with engine.connect() as conn:
        row = find(conn, "crm")
    assert row is not None
    scope = scope_from_row(row["accountcodes"], row["extensions"])
    asyncio.run(Webhooks(settings.replace(webhook_allow_cidrs="127.0.0.1"), engine).add(
        row["id"], scope, url
    ))  # fmt: skip
    load(*rows(N_CALLS))
    with engine.connect() as conn:
        return [e["id"] for e in events_for_partner(conn, Scope(), 0, 10_000)]


def env(db_url: str, **extra: str) -> dict[str, str]:
    return {
        **environment(),
        "VOIP24H_DATABASE_URL": db_url,
        "VOIP24H_WEBHOOK_ALLOW_CIDRS": "127.0.0.1",
        "VOIP24H_WEBHOOK_POLL_SECONDS": "0.05",
        "VOIP24H_WEBHOOK_LEASE_SECONDS": "2",
        "VOIP24H_WEBHOOK_RETRY_SECONDS": ",".join(["0"] + ["1"] * 10),
        **extra,
    }


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_deliverer_killed_mid_batch_and_restarted_loses_nothing(
    settings, engine, db_url, add_partner, load, receiver
):
    expected = setup(settings, engine, add_partner, load, receiver.url)
    assert len(expected) == N_CALLS
    first = subprocess.Popen(voip24h("deliver"), env=env(db_url), stderr=subprocess.DEVNULL)
    try:
        assert receiver.wait_for(lambda: len(receiver.delivered()) >= 20)
    finally:
        stop(first, signal.SIGKILL)
    got_before = {s["id"] for s in receiver.delivered()}
    assert len(got_before) < len(expected), "killed before the end of the batch"
    second = subprocess.Popen(voip24h("deliver"), env=env(db_url), stderr=subprocess.DEVNULL)
    try:
        assert receiver.wait_for(
            lambda: {s["id"] for s in receiver.delivered()} >= set(expected), timeout=60
        )
    finally:
        stop(second)
    ids = [s["id"] for s in receiver.delivered()]
    assert set(ids) == set(expected)
    # at least once: only deliveries in flight at the kill may come twice
    assert len(ids) - len(set(ids)) <= settings.webhook_max_in_flight
    assert all(s["verified"] is False for s in receiver.delivered())  # no secret given


def test_two_server_processes_deliver_each_event_once(
    settings, engine, db_url, add_partner, load, receiver
):
    expected = setup(settings, engine, add_partner, load, receiver.url)
    servers = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:
            servers.append(
                subprocess.Popen(
                    voip24h("serve", "--port", port),
                    env=env(db_url, VOIP24H_WEBHOOK_LEASE_SECONDS="5"),
                    stderr=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_for_port(port)
        assert receiver.wait_for(lambda: len(receiver.delivered()) >= len(expected), timeout=60)
        receiver.wait_for(lambda: False, timeout=1.0)  # time for a second delivery to show
    finally:
        for server in servers:
            stop(server)
    ids = [s["id"] for s in receiver.delivered()]
    assert sorted(ids) == sorted(expected)  # each once
