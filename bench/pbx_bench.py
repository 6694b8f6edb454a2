"""The PBX link under load: AMI events at 10,000/s into a running ``voip24h serve``.

``.venv/bin/python -m bench.pbx_bench [--rate 10000] [--seconds 1] [--rounds 12]``

A scripted AMI peer (in a process of its own) streams the Asterisk 20 firehose
(tests/fixtures/ami/firehose_pass1.txt; uniqueids renumbered per pass, Timestamp set
to the moment each event is sent) at ``--rate`` events per second to a real server
(``voip24h serve`` in its own process, SQLite, one worker, the link in serve: in its
``voip24h pbx`` child by default, in the worker with ``--in-worker``). Short
slices alternate, idle (the peer silent) and busy, each ``--seconds`` long, ``--rounds``
pairs in idle-busy-busy-idle order, so that a neighbour's load on the machine falls on
both alike; in both, partner requests (getUser) go out at a fixed ``--api-rate``.
Reported:

- CPU per AMI event: the server's CPU time in busy phases less idle ones, per event;
- event-to-outbox latency, p50 and p99: from the AMI event's Timestamp to the moment
  its live event is committed and readable in the outbox (polled every 5 ms);
- partner API latency p50 and p99, idle and busy (every slice of a kind pooled), and
  busy/idle; the median of the per-pair p50 ratios beside it. PASS when the pooled
  busy/idle p50 is at most ``TARGET`` (1.1), FAIL otherwise (exit status 3, FAIL_STATUS;
  a crash exits 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.servers import ROOT, System, running, stop, tree

FIXTURE = ROOT / "tests" / "fixtures" / "ami" / "firehose_pass1.txt"
MASTER = ROOT / "tests" / "fixtures" / "asterisk-20" / "Master.csv"
TARGET = 1.10  # the bound on busy/idle partner API latency
FAIL_STATUS = 3  # the exit status of a run that misses TARGET (a crash is 1)
PASSES = 64  # renumbered copies: no uniqueid repeats within a default run
_STAMP = re.compile(rb"Timestamp: [0-9.]+")


def event_passes() -> list[list[bytes]]:
    """The firehose's events (no responses), ``PASSES`` times with fresh uniqueids."""
    data = FIXTURE.read_bytes().partition(b"\r\n")[2]
    blocks = [b for b in data.split(b"\r\n\r\n") if b.startswith(b"Event: ")]
    one = b"\r\n\r\n".join(blocks)
    passes = []
    for n in range(PASSES):
        renumbered = one.replace(b"179659", b"%06d" % (279659 + n))
        passes.append([block + b"\r\n\r\n" for block in renumbered.split(b"\r\n\r\n")])
    return passes


class Source:
    """An AMI server that logs any client in and streams events while ``busy`` is set
    (a multiprocessing Event: the source runs in a process of its own)."""

    def __init__(self, rate: float, busy: Any, sent: Any, logins: Any):
        self.rate = rate
        self.busy, self.sent, self.logins = busy, sent, logins
        self.events = [block for one in event_passes() for block in one]
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        streamer = asyncio.create_task(self._stream(writer))
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, _, buffer = buffer.partition(b"\r\n\r\n")
                    lines = raw.decode().split("\r\n")
                    fields = dict(line.split(": ", 1) for line in lines if ": " in line)
                    if fields.get("Action") == "Login":
                        self.logins.value += 1
                    action_id = fields.get("ActionID", "")
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
        except (asyncio.CancelledError, ConnectionError):
            pass  # the server went away, or the bench is over
        finally:
            streamer.cancel()
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        index, total = 0, len(self.events)
        while True:
            while not self.busy.is_set():
                await asyncio.sleep(0.01)
            started, sent = time.monotonic(), 0
            while self.busy.is_set():
                await asyncio.sleep(0.01)
                due = int((time.monotonic() - started) * self.rate) - sent
                if due <= 0:
                    continue
                chunk = [self.events[(index + i) % total] for i in range(due)]
                index = (index + due) % total
                stamp = b"Timestamp: %.6f" % time.time()
                writer.write(_STAMP.sub(stamp, b"".join(chunk)))
                sent += due
                self.sent.value += due
                await writer.drain()


class OutboxWatch(threading.Thread):
    """Polls the outbox every 5 ms; the latency of each new live event while ``on``."""

    def __init__(self, path: Path, on: Any, stop: Any):
        super().__init__(daemon=True)
        self.path, self.on, self.stop = path, on, stop
        self.latencies: list[float] = []

    def run(self) -> None:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        while not self.stop.is_set():
            rows = conn.execute(
                "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
            now = time.time()
            for last, payload in rows:
                seq = last
                stamp = json.loads(payload).get("occurredAt", "")
                if self.on.is_set() and stamp:
                    at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                    self.latencies.append(now - at)
            time.sleep(0.005)


def feeder(rate: float, db: Path, flags: dict[str, Any], ready: Any, results: Any) -> None:
    """The AMI source and the outbox watch, in a process of their own, so that their
    work never delays the partner requests this bench measures."""

    async def serve() -> None:
        source = Source(rate, flags["busy"], flags["sent"], flags["logins"])
        await source.start()
        ready.put(source.port)
        watch = OutboxWatch(db, flags["watching"], flags["stop"])
        watch.start()
        while not flags["stop"].is_set():
            await asyncio.sleep(0.05)
        source.server.close()
        watch.join()
        results.put(watch.latencies)

    asyncio.run(serve())


@contextlib.contextmanager
def link_process(system: System, log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``voip24h pbx`` (it listens on no port: started, then stopped at the end)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "pbx.log").open("ab") as log:
        proc = subprocess.Popen(
            system.argv,
            env={**os.environ, **system.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree, in seconds."""
    ticks = 0
    for one in tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / 100.0  # USER_HZ


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare(directory: Path) -> tuple[str, str]:
    """A SQLite database with the Asterisk 20 calls and a partner: (url, secret)."""

    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.service import partner_admin

    url = f"sqlite:///{directory / 'bench.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    subprocess.run(
        [sys.executable, "-m", "voip24h", "import", "--db", url, str(MASTER)],
        check=True,
        capture_output=True,
    )
    secret = partner_admin.add(engine, "bench", [], [], None).secret
    engine.dispose()
    return url, secret


async def api_phase(
    client: httpx.AsyncClient, secret: str, rate: float, seconds: float
) -> list[float]:
    """Requests at ``rate`` per second for ``seconds`` (open loop): their latencies."""
    body = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "101"}}
    latencies: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        answer = await client.post("/api/v1/partner/voip24h", json=body)
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"partner API answered {answer.status_code}: {answer.text}")

    tasks, started = [], time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies


async def measure(args: argparse.Namespace, url: str, secret: str, db: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    flags = {
        "busy": context.Event(),
        "watching": context.Event(),
        "stop": context.Event(),
        "sent": context.Value("q", 0),
        "logins": context.Value("q", 0),
    }
    ready, results = context.Queue(), context.Queue()
    child = context.Process(target=feeder, args=(args.rate, db, flags, ready, results))
    child.start()
    port = ready.get(timeout=60)
    busy_flag, sent = flags["busy"], flags["sent"]
    system = System(
        "voip24h-pbx", "sqlite",
        [sys.executable, "-m", "voip24h", "serve", "--db", url, "--port", "{port}"],
        env={"VOIP24H_AMI_URL": f"ami://bench:x@127.0.0.1:{port}",
             "VOIP24H_PBX_LINK_IN_SERVE": "false" if args.separate else "true",
             "VOIP24H_PBX_LINK_PROCESS": "false" if args.in_worker else "true",
             "VOIP24H_RATE_LIMIT_PER_SECOND": "0", "VOIP24H_LOG_LEVEL": "warning"},
    )  # fmt: skip
    link = System(
        "voip24h-pbx-link", "sqlite",
        [sys.executable, "-m", "voip24h", "pbx", "--db", url],
        env={"VOIP24H_AMI_URL": f"ami://bench:x@127.0.0.1:{port}", "VOIP24H_LOG_LEVEL": "warning"},
    )  # fmt: skip
    phases: dict[str, dict[str, Any]] = {
        k: {"api": [], "slices": [], "cpu": 0.0, "events": 0} for k in ("idle", "busy")
    }
    try:
        with contextlib.ExitStack() as stack:
            proc = stack.enter_context(running(system, db.parent / "logs"))
            pids = [proc.pid]
            if args.separate:
                pids.append(stack.enter_context(link_process(link, db.parent / "logs")).pid)
            deadline = time.monotonic() + 30
            while not flags["logins"].value and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if not flags["logins"].value:
                raise RuntimeError("the server never logged in to the AMI source")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{system.port}", timeout=30
            ) as client:
                busy_flag.set()  # warm up: the link, the outbox, the partner path
                await api_phase(client, secret, args.api_rate, min(1.0, args.seconds))
                busy_flag.clear()
                await asyncio.sleep(0.5)
                order = ["idle", "busy", "busy", "idle"] * args.rounds
                for kind in order[: 2 * args.rounds]:
                    if kind == "busy":
                        busy_flag.set()
                        flags["watching"].set()
                    cpu, before = sum(map(cpu_seconds, pids)), sent.value
                    latencies = await api_phase(client, secret, args.api_rate, args.seconds)
                    phases[kind]["api"] += latencies
                    phases[kind]["slices"].append(pct(latencies, 0.50))
                    phases[kind]["cpu"] += sum(map(cpu_seconds, pids)) - cpu
                    phases[kind]["events"] += sent.value - before
                    busy_flag.clear()
                    await asyncio.sleep(0.3)  # the last events reach the outbox
                    flags["watching"].clear()
    finally:
        flags["stop"].set()
        outbox: list[float] = results.get(timeout=30)
        child.join(timeout=30)
    busy, idle = phases["busy"], phases["idle"]
    events = busy["events"]
    return {
        "rate_target": args.rate,
        "rate_sent": events / (args.seconds * args.rounds),
        "events": events,
        "live_events": len(outbox),
        "cpu_us_per_event": (busy["cpu"] - idle["cpu"]) / events * 1e6 if events else None,
        "outbox_p50_ms": pct(outbox, 0.50) * 1000,
        "outbox_p99_ms": pct(outbox, 0.99) * 1000,
        "api_idle_p50_ms": pct(idle["api"], 0.50) * 1000,
        "api_idle_p99_ms": pct(idle["api"], 0.99) * 1000,
        "api_busy_p50_ms": pct(busy["api"], 0.50) * 1000,
        "api_busy_p99_ms": pct(busy["api"], 0.99) * 1000,
        "api_requests": len(idle["api"]) + len(busy["api"]),
        "api_mean_ratio": statistics.fmean(busy["api"]) / statistics.fmean(idle["api"]),
        "api_pair_p50_ratio": statistics.median(
            b / i for b, i in zip(busy["slices"], idle["slices"], strict=True)
        ),
        "slices": len(busy["slices"]) + len(idle["slices"]),
        "slice_seconds": args.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="AMI events/s [10000]")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per slice [1]")
    parser.add_argument("--rounds", type=int, default=12, help="idle+busy slice pairs [12]")
    parser.add_argument("--api-rate", type=float, default=100.0, help="partner requests/s")
    parser.add_argument(
        "--separate", action="store_true",
        help="the link in `voip24h pbx` beside the server (pbx_link_in_serve=false)",
    )  # fmt: skip
    parser.add_argument(
        "--in-worker", action="store_true",
        help="the link in the server's worker process (pbx_link_process=false)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voip24h-pbx-bench-") as tmp:
        url, secret = prepare(Path(tmp))
        result = asyncio.run(measure(args, url, secret, Path(tmp) / "bench.db"))
    r = result
    print(
        f"AMI events: {r['events']:,} sent at {r['rate_sent']:,.0f}/s "
        f"(target {r['rate_target']:,.0f}/s); {r['live_events']:,} live events"
    )
    where = (
        "server and link processes" if args.separate
        else "server process, link in its worker" if args.in_worker
        else "server and its link child process"
    )  # fmt: skip
    print(f"CPU per AMI event: {r['cpu_us_per_event']:.1f} us ({where}, busy - idle)")
    print(
        f"event-to-outbox latency: p50 {r['outbox_p50_ms']:.1f} ms, p99 {r['outbox_p99_ms']:.1f} ms"
    )
    for name in ("p50", "p99"):
        idle, busy = r[f"api_idle_{name}_ms"], r[f"api_busy_{name}_ms"]
        print(
            f"partner API {name}: idle {idle:.2f} ms, busy {busy:.2f} ms, "
            f"busy/idle {busy / idle:.2f}x"
        )
    ratio = r["api_busy_p50_ms"] / r["api_idle_p50_ms"]
    r["api_p50_ratio"], r["pass"] = ratio, ratio <= TARGET
    print(
        f"partner API mean busy/idle: {r['api_mean_ratio']:.2f}x; median of per-pair p50 "
        f"ratios {r['api_pair_p50_ratio']:.2f}x ({r['api_requests']} requests in "
        f"{r['slices']} interleaved slices of {r['slice_seconds']:g} s)"
    )
    verdict = "PASS" if r["pass"] else "FAIL"
    print(f"{verdict}: partner API busy/idle p50 {ratio:.2f}x (target <= {TARGET:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not r["pass"]:
        raise SystemExit(FAIL_STATUS)


if __name__ == "__main__":
    main()
