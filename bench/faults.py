"""The figures of issue 19 under faults, one command: ``python -m bench.faults``.

* ``mixed``: a Master.csv mixing NUL bytes, 20-digit integers and 10 MB fields with
  good lines, imported by ``voip24h import`` into a fresh SQLite, PostgreSQL and
  MariaDB database: exit code, lines kept, lines rejected by reason, wall time.
* ``pg-import``: the first import of ``--rows`` (100k) rows into an empty PostgreSQL
  database, with the ANALYZE after its first batches and without it (the same
  command with ``ingest.files.ANALYZE_AFTER_BATCHES`` out of reach).
* ``frozen`` / ``stopped``: ``voip24h serve`` on PostgreSQL and on MariaDB through a
  TCP relay that stops forwarding (the database frozen, as under SIGSTOP) or cuts every
  connection and refuses new ones (the database stopped), without touching the shared
  servers; ``--rate`` requests/s for ``--seconds``: answers by error code, the time to
  each 503, and the time to the first 200 once the relay forwards again.
* ``slow``: ``voip24h serve`` (SQLite) under ``ulimit -n 1024`` with ``--slow``
  connections trickling a body at one byte a second, while a normal client asks
  ``--rate`` requests/s: its success rate and p99.

Every database is created for the run and dropped after it; every socket is on
127.0.0.1. Prints one JSON object (``--json FILE`` also writes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.import_bench import generate

SERVERS = {
    "postgresql": os.environ.get("BENCH_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}  # fmt: skip
SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC}
ENV = {k: v for k, v in ENV.items() if not k.startswith("VOIP24H_")}


# -- databases ----------------------------------------------------------------------------


class Database:
    """A fresh, upgraded database on ``backend`` for one measure; ``drop()`` after."""

    def __init__(self, backend: str, workdir: Path):
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from voip24h.db import migrate
        from voip24h.db.engine import make_engine, sync_url

        self.backend = backend
        self.admin = None
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        else:
            self.name = f"voip24h_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self.admin = create_engine(sync_url(SERVERS[backend]), isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                extra = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mysql" else ""
                conn.execute(text(f"CREATE DATABASE {self.name}{extra}"))
            url = make_url(SERVERS[backend]).set(database=self.name)
            self.url = url.render_as_string(hide_password=False)
        engine = make_engine(self.url)
        migrate.upgrade(engine)
        engine.dispose()

    def drop(self) -> None:
        from sqlalchemy import text

        if self.admin is None:
            return
        with self.admin.connect() as conn:
            force = " WITH (FORCE)" if self.backend == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {self.name}{force}"))
        self.admin.dispose()


def voip24h(*args: str, prelude: str = "") -> tuple[int, str, str, float]:
    """Run the CLI in a child process: exit code, stdout, stderr, wall seconds."""
    argv = f"sys.argv = ['voip24h', *{list(args)!r}]"
    code = "\n".join([prelude, "import sys", "from voip24h.cli.main import main", argv, "main()"])
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


# -- mixed Master.csv ---------------------------------------------------------------------


def mixed_file(path: Path, good: int) -> dict[str, int]:
    """``good`` generated lines, and bad ones between them: what was written."""
    import csv
    import io

    plain = path.with_suffix(".good")
    generate(plain, good)
    lines = plain.read_text().splitlines(keepends=True)
    plain.unlink()
    bad = {"nul": 0, "20-digit integer": 0, "10 MB field": 0}

    def mutate(text: str, n: int) -> str:
        fields = next(csv.reader([text]))
        fields[16] = fields[19] = f"bad.{n}"  # uniqueid, linkedid: a call of its own
        kind = ("nul", "20-digit integer", "10 MB field")[n % 3]
        bad[kind] += 1
        if kind == "nul":
            fields[4] = '"Ext\x00" <100>'
        elif kind == "20-digit integer":
            fields[12] = "12345678901234567890"
        else:
            fields[8] = "x" * 10_000_000
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(fields)
        return out.getvalue()

    step = max(good // 30, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        n = 0
        for index, text in enumerate(lines):
            handle.write(text)
            if index % step == step // 2:
                handle.write(mutate(text, n))
                n += 1
    return {"good": good, **bad}


def run_mixed(workdir: Path, good: int, backends: list[str]) -> dict[str, Any]:
    path = workdir / "Master-mixed.csv"
    written = mixed_file(path, good)
    results: dict[str, Any] = {"file": written, "bytes": path.stat().st_size}
    for backend in backends:
        database = Database(backend, workdir)
        rejects = workdir / f"rejects-{backend}.csv"
        try:
            code, out, err, seconds = voip24h(
                "import", str(path), "--db", database.url, "--json", "--quiet",
                "--rejects", str(rejects),
            )  # fmt: skip
            summary = json.loads(out) if out.strip() else {"error": err.strip()[-400:]}
            reasons: Counter[str] = Counter()
            if rejects.exists():
                from voip24h.ingest.rejects import read_rejects

                for row in read_rejects(rejects):
                    reasons[row["reason"].split(" at character")[0][:120]] += 1
            results[backend] = {
                "exit": code,
                "imported": summary.get("imported"),
                "rejected": summary.get("rejected"),
                "reasons": dict(reasons),
                "seconds": round(seconds, 1),
            }
        finally:
            database.drop()
    path.unlink()
    return results


# -- first PostgreSQL import --------------------------------------------------------------


def run_pg_import(workdir: Path, rows: int) -> dict[str, Any]:
    path = workdir / "Master-100k.csv"
    generate(path, rows)
    results: dict[str, Any] = {"rows": rows}
    variants = {
        "with ANALYZE after 2 batches": "",
        "without it (before the change)": (
            "import voip24h.ingest.files as f\nf.ANALYZE_AFTER_BATCHES = 10**9"
        ),
    }
    for name, prelude in variants.items():
        database = Database("postgresql", workdir)
        try:
            code, out, err, seconds = voip24h(
                "import", str(path), "--db", database.url, "--json", "--quiet", prelude=prelude
            )
            summary = json.loads(out) if out.strip() else {"error": err.strip()[-400:]}
            results[name] = {
                "exit": code,
                "imported": summary.get("imported"),
                "seconds": round(seconds, 1),
                "rows_per_second": round(rows / seconds),
            }
        finally:
            database.drop()
    path.unlink()
    return results


# -- a served database ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(url: str, workdir: Path, rows: int = 2000) -> str:
    """Load some calls into ``url``; the secret of a partner that sees them all."""
    path = workdir / "seed.csv"
    generate(path, rows)
    code, _out, err, _ = voip24h("import", str(path), "--db", url, "--quiet")
    assert code == 0, err
    path.unlink()
    from voip24h.db.engine import make_engine
    from voip24h.service import partner_admin

    engine = make_engine(url)
    try:
        return partner_admin.add(engine, "bench", [], []).secret
    finally:
        engine.dispose()


class Served:
    """``voip24h serve`` in a child process (its own session), stopped by ``close()``."""

    def __init__(self, url: str, log: Path, *, nofile: int | None = None, **settings: Any):
        self.port = free_port()
        # One bench client asks for everything: the per-partner rate limits are off.
        settings = {"rate_limit_per_second": 0, "rate_limit_rows_per_minute": 0, **settings}
        env = {**ENV, **{f"VOIP24H_{k.upper()}": str(v) for k, v in settings.items()}}

        def limits() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voip24h", "serve", "--db", url, "--port", str(self.port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=limits,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; see {log}") from None
                time.sleep(0.2)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def body(secret: str) -> bytes:
    data = {"requestType": "getUser", "partnerSecret": secret, "data": {"user": "137"}}
    return json.dumps(data).encode()


API = "/api/v1/partner/voip24h"


async def one_request(port: int, payload: bytes, timeout: float) -> tuple[str, float]:
    """One request on a new connection: its outcome ('200', '503 database_busy', ...)."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(
            f"POST {API} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        answer = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
    except (TimeoutError, OSError) as exc:
        return f"no answer ({type(exc).__name__})", time.perf_counter() - started
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode() if head else "closed"
    if status != "200":
        try:
            status += " " + json.loads(rest)["errorCode"]
        except (ValueError, KeyError):
            status += " (not the envelope)"
    return status, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3) if ordered else 0.0


async def paced(
    port: int, payload: bytes, rate: float, seconds: float, timeout: float
) -> list[tuple[str, float]]:
    tasks = []
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        tasks.append(asyncio.create_task(one_request(port, payload, timeout)))
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
    return list(await asyncio.gather(*tasks))


# -- frozen database ------------------------------------------------------------------------


class Relay:
    """A TCP relay 127.0.0.1:port -> the database. ``frozen`` stops it forwarding (the
    connections stay open, nothing answers: a database under SIGSTOP, seen from
    outside); ``stop()`` cuts every connection and refuses new ones (a database that is
    stopped) until ``start()``. The shared database servers are never touched."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.frozen = threading.Event()
        self.stopped = threading.Event()
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                while self.frozen.is_set():
                    await asyncio.sleep(0.01)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while self.frozen.is_set():  # a new connection is not answered either
            await asyncio.sleep(0.01)
        if self.stopped.is_set():
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.writers.difference_update((writer, up_writer))

    def stop(self) -> None:
        self.stopped.set()

        def cut() -> None:
            for writer in list(self.writers):
                writer.transport.abort()

        self.loop.call_soon_threadsafe(cut)

    def start(self) -> None:
        self.stopped.clear()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def run_outage(
    workdir: Path, backend: str, mode: str, rate: float, seconds: float
) -> dict[str, Any]:
    """``mode`` frozen or stopped, for ``seconds`` at ``rate`` requests/s."""
    from sqlalchemy.engine import make_url

    database = Database(backend, workdir)
    served = relay = None
    try:
        secret = seed(database.url, workdir)
        real = make_url(database.url)
        default_port = 5432 if backend == "postgresql" else 3306
        relay = Relay((real.host or "127.0.0.1", real.port or default_port))
        via = real.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        served = Served(via, workdir / f"serve-{backend}-{mode}.log")
        payload = body(secret)
        warm = asyncio.run(paced(served.port, payload, 20, 1, 30))
        assert all(s == "200" for s, _ in warm), Counter(s for s, _ in warm)
        if mode == "frozen":
            relay.frozen.set()
        else:
            relay.stop()
        answers = asyncio.run(paced(served.port, payload, rate, seconds, 60))
        relay.frozen.clear()
        relay.start()
        back = time.perf_counter()
        while asyncio.run(one_request(served.port, payload, 30))[0] != "200":
            time.sleep(0.02)
        recovery = time.perf_counter() - back
    finally:
        if served:
            served.close()
        if relay:
            relay.close()
        database.drop()
    by_code = Counter(s for s, _ in answers)
    refused = [t for s, t in answers if s.startswith("503")]
    return {
        "requests": len(answers),
        "rate": rate,
        "seconds": seconds,
        "answers": dict(by_code),
        "time_to_503_p50": percentile(refused, 50),
        "time_to_503_p99": percentile(refused, 99),
        "time_to_503_max": round(max(refused), 3) if refused else None,
        "first_200_after_database_back_seconds": round(recovery, 2),
    }


# -- slow clients -------------------------------------------------------------------------


def run_slow(workdir: Path, slow: int, rate: float, seconds: float) -> dict[str, Any]:
    database = Database("sqlite", workdir)
    secret = seed(database.url, workdir)
    served = Served(database.url, workdir / "serve-slow.log", nofile=1024)
    stop = threading.Event()
    held: list[socket.socket] = []

    def trickle() -> None:
        """``slow`` connections sending a 100-byte body one byte a second; reconnect
        when the server closes one (so ``slow`` stay open all along)."""
        head = (
            f"POST {API} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n"
        ).encode()
        while not stop.is_set() and len(held) < slow:
            try:
                sock = socket.create_connection(("127.0.0.1", served.port), timeout=0.5)
                sock.setblocking(False)
                sock.send(head)
                held.append(sock)
            except OSError:
                time.sleep(0.01)
        while not stop.is_set():
            for index, sock in enumerate(held):
                try:
                    sock.send(b"{")
                except OSError:
                    sock.close()
                    try:
                        fresh = socket.create_connection(("127.0.0.1", served.port), timeout=0.5)
                        fresh.setblocking(False)
                        fresh.send(head)
                        held[index] = fresh
                    except OSError:
                        pass
            stop.wait(1.0)

    thread = threading.Thread(target=trickle, daemon=True)
    try:
        thread.start()
        time.sleep(3)  # the slow connections are open
        opened = len(held)
        answers = asyncio.run(paced(served.port, body(secret), rate, seconds, 30))
    finally:
        stop.set()
        thread.join(timeout=10)
        for sock in held:
            sock.close()
        served.close()
        database.drop()
    ok = [t for s, t in answers if s == "200"]
    return {
        "slow_connections": slow,
        "slow_open_when_measuring": opened,
        "server_nofile": 1024,
        "normal_requests": len(answers),
        "answers": dict(Counter(s for s, _ in answers)),
        "success_rate": round(len(ok) / len(answers), 4) if answers else None,
        "p99_seconds": percentile([t for _, t in answers], 99),
        "p50_seconds": percentile([t for _, t in answers], 50),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--only", default="mixed,pg-import,frozen,stopped,slow")
    parser.add_argument("--good", type=int, default=10_000, help="good lines of the mixed file")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the PostgreSQL import")
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s (frozen, slow)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of frozen/slow runs")
    parser.add_argument("--slow", type=int, default=2500, help="slow connections")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voip24h-faults-") as tmp:
        workdir = Path(tmp)
        if "mixed" in only:
            figures["mixed"] = run_mixed(workdir, args.good, args.backends.split(","))
        if "pg-import" in only:
            figures["pg_import"] = run_pg_import(workdir, args.rows)
        for mode in ("frozen", "stopped"):
            if mode in only:
                figures[mode] = {
                    backend: run_outage(workdir, backend, mode, args.rate, args.seconds)
                    for backend in args.backends.split(",")
                    if backend != "sqlite"
                }
        if "slow" in only:
            figures["slow"] = run_slow(workdir, args.slow, args.rate, args.seconds)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
