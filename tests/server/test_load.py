"""A bounded load run against a real `voip24h serve` on loopback: 64 connections for
~15 s of mixed valid, invalid and over-limit requests. No 5xx, every answer a valid
envelope, memory stable."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.builders import cdr_row
from tests.conftest import API
from voip24h.service import partner_admin

CONNECTIONS = 64
SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_mixed_load_has_no_server_errors_and_stable_memory(engine, db_url, load, add_partner):
    load(*[cdr_row(uniqueid=f"{1532857000 + n}.{n}") for n in range(50)])
    calm = add_partner("calm")
    busy = add_partner("busy")
    partner_admin.set_limits(engine, "calm", {"rate_per_second": 0})
    partner_admin.set_limits(engine, "busy", {"rate_per_second": 2})
    port = free_port()
    env = {
        **os.environ,
        "VOIP24H_DATABASE_URL": db_url,
        "VOIP24H_PORT": str(port),
        "VOIP24H_TRUSTED_PROXIES": "127.0.0.1",
        "VOIP24H_AUTH_FAILURES_PER_MINUTE": "5",
        "VOIP24H_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "voip24h", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        counts, rss = asyncio.run(_run(f"http://127.0.0.1:{port}", server.pid, calm, busy))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    print(f"load: {sum(counts.values())} requests {dict(counts)}; RSS MB {rss}")
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (-15).
    assert server.returncode in (0, -15), err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-4000:]
    assert not [key for key in counts if key[0] >= 500], counts
    assert counts[(200, "ok")] > 100
    assert counts[(429, "rate_limited")] > 0  # the busy partner and throttled addresses
    assert counts[(401, "invalid_secret")] > 0 and counts[(400, "invalid_json")] > 0
    growth = rss[-1] - rss[0]
    assert growth < 30, f"RSS grew {growth:.1f} MB during the run: {rss}"


async def _run(base: str, pid: int, calm: str, busy: str) -> tuple[Counter, list[float]]:
    async with httpx.AsyncClient(
        base_url=base, limits=httpx.Limits(max_connections=CONNECTIONS), timeout=30
    ) as client:
        deadline = time.monotonic() + 20
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.1)
        counts: Counter = Counter()
        rss: list[float] = []
        stop = time.monotonic() + SECONDS

        async def worker(n: int) -> None:
            rnd = random.Random(n)
            while time.monotonic() < stop:
                kind = rnd.random()
                headers = {"Content-Type": "application/json"}
                if kind < 0.45:
                    body = _get_user(calm)
                elif kind < 0.65:
                    body = _get_user(busy)  # over its 2/s: many 429s
                elif kind < 0.8:
                    body = _get_user(f"guess-{rnd.random()}")
                    headers["X-Forwarded-For"] = f"198.51.100.{rnd.randrange(4)}"
                elif kind < 0.9:
                    body = b'{"requestType": "getUser", "data": {'
                else:
                    body = orjson.dumps({"requestType": "getUser", "partnerSecret": calm,
                                         "data": {"user": "137", "bogus": [[[1]]]}})  # fmt: skip
                response = await client.post(API, content=body, headers=headers)
                counts[(response.status_code, _kind(response))] += 1

        async def sampler() -> None:
            await asyncio.sleep(3)  # after warm-up
            while time.monotonic() < stop:
                rss.append(round(rss_mb(pid), 1))
                await asyncio.sleep(2)
            rss.append(round(rss_mb(pid), 1))

        await asyncio.gather(sampler(), *(worker(n) for n in range(CONNECTIONS)))
    return counts, rss


def _get_user(secret: str) -> bytes:
    return orjson.dumps(
        {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    )


def _kind(response: httpx.Response) -> str:
    doc = orjson.loads(response.content)
    if response.status_code == 200:
        assert doc["respCode"] == 0 and len(doc["data"]) == 50
        return "ok"
    assert doc["respCode"] == -1 and set(doc) == {"respCode", "respMsg", "errorCode"}
    return str(doc["errorCode"])
