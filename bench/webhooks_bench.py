"""Webhooks: events per second delivered to a local receiver, and import speed with the
event outbox on against off, measured in one run.

``python -m bench.webhooks_bench --rows 200000`` prints the figures as JSON.

* The input is import_bench's generated Master.csv (outbound, inbound, internal calls,
  ring-group forks). ``voip24h import`` runs in a child process on an empty, migrated
  SQLite database, once with ``VOIP24H_EVENTS_ENABLED=false`` and once with events on
  (one partner with one webhook endpoint, so every record makes an event that is also
  queued for delivery), alternating, ``--repeat`` times each; the best wall time of
  each side gives the ratio (target: on >= 0.8x off).
* Delivery: the deliverer (service/webhooks/deliverer.py, the code ``voip24h serve``
  and ``voip24h deliver`` run) sends the import's first ``--deliveries`` events to a
  receiver on 127.0.0.1 that answers 204, with 1, 4 and 16 in flight; events/s is
  received events over the wall time from the first round to the last one received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.import_bench import generate


def _database(path: Path, with_endpoint: str | None) -> str:
    """An empty, migrated SQLite database; with a partner and an endpoint at ``url``."""
    from voip24h.config import load_settings
    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.domain.partners import Scope
    from voip24h.service import partner_admin
    from voip24h.service.webhooks.endpoints import Webhooks

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    if with_endpoint:
        partner_admin.add(engine, "bench", [], [], None)
        values = {"database_url": url, "webhook_allow_cidrs": "127.0.0.1"}
        settings = load_settings(values, environ={})
        asyncio.run(Webhooks(settings, engine).add(1, Scope(), with_endpoint))
    engine.dispose()
    return url


def _import(csv_path: Path, url: str, events: bool) -> tuple[float, float, dict[str, Any]]:
    """``voip24h import`` in a child: (wall s, CPU s, its JSON summary)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP24H_")}
    env["VOIP24H_EVENTS_ENABLED"] = "true" if events else "false"
    command = [sys.executable, "-m", "voip24h", "import", str(csv_path), "--db", url]
    command += ["--quiet", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"import failed: {done.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, json.loads(done.stdout)


class _Sink:
    """A receiver on 127.0.0.1 answering 204 to every POST, counting them."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with sink.lock:
                    sink.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _deliver(url: str, sink: _Sink, target: int, in_flight: int) -> float:
    """Deliver until ``sink`` has ``target`` more events; events per second."""
    from sqlalchemy import update

    from voip24h.config import load_settings
    from voip24h.db.engine import make_engine
    from voip24h.db.queries import leases
    from voip24h.db.schema import webhook_deliveries, webhook_endpoints
    from voip24h.service.webhooks import sender
    from voip24h.service.webhooks.deliverer import LEASE, Deliverer

    settings = load_settings(
        {
            "database_url": url,
            "webhook_allow_cidrs": "127.0.0.1",
            "webhook_max_in_flight": in_flight,
            "webhook_poll_seconds": 0.01,
        },
        environ={},
    )
    engine = make_engine(url)
    with engine.begin() as conn:  # start over: every event queued again from the first
        conn.execute(webhook_deliveries.delete())
        conn.execute(update(webhook_endpoints).values(last_seq=0))
    deliverer = Deliverer(settings, engine)
    start_count = sink.count

    async def run() -> float:
        async with sender.new_client() as client:
            started = time.perf_counter()
            while sink.count - start_count < target:
                await deliverer.round(client)
            return (sink.count - start_count) / (time.perf_counter() - started)

    try:
        return asyncio.run(run())
    finally:
        leases.release(engine, LEASE, deliverer.holder)  # the next run's deliverer takes it
        engine.dispose()


def run(
    rows: int = 200_000,
    deliveries: int = 5_000,
    repeat: int = 2,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Generate, import with events off and on, deliver; return the figures."""
    own = workdir is None
    work = Path(workdir or tempfile.mkdtemp(prefix="voip24h-webhooks-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sink = _Sink()
    try:
        csv_path = work / f"Master-{rows}.csv"
        if not csv_path.exists():
            generate(csv_path, rows)
        off: list[tuple[float, float]] = []
        on: list[tuple[float, float]] = []
        summary: dict[str, Any] = {}
        for _ in range(repeat):
            url = _database(work / "off.db", None)
            seconds, cpu, _ = _import(csv_path, url, events=False)
            off.append((seconds, cpu))
            url = _database(work / "on.db", sink.url)
            seconds, cpu, summary = _import(csv_path, url, events=True)
            on.append((seconds, cpu))
        best_off, best_on = min(off), min(on)
        from voip24h.db.engine import make_engine
        from voip24h.db.queries.webhooks import newest_seq

        engine = make_engine(url)
        with engine.connect() as conn:
            events = newest_seq(conn)
        engine.dispose()
        target = min(deliveries, events)
        rates = {n: round(_deliver(url, sink, target, n)) for n in (1, 4, 16)}
        imported = summary["imported"]
        return {
            "rows": rows,
            "imported": imported,
            "records": summary["records"],
            "events": events,
            "import_events_off_seconds": round(best_off[0], 2),
            "import_events_on_seconds": round(best_on[0], 2),
            "import_events_off_rows_per_s": round(imported / best_off[0]),
            "import_events_on_rows_per_s": round(imported / best_on[0]),
            "import_on_vs_off": round(best_off[0] / best_on[0], 3),
            "import_on_vs_off_cpu": round(min(c for _, c in off) / min(c for _, c in on), 3),
            "delivered": target,
            "delivered_events_per_s": {f"in_flight_{n}": rate for n, rate in rates.items()},
        }
    finally:
        sink.close()
        if own:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_bench")
    parser.add_argument("--rows", type=int, default=200_000, help="Master.csv rows [200000]")
    parser.add_argument("--deliveries", type=int, default=5_000, help="events to deliver [5000]")
    parser.add_argument("--repeat", type=int, default=2, help="imports of each kind [2]")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.deliveries, args.repeat), indent=2))


if __name__ == "__main__":
    main()
