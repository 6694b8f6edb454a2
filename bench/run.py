"""``python -m bench run``: datasets, systems, wrk runs, memory checks, report."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import platform
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from bench import workload
from bench.dataset import Shape, label, write_master_csv
from bench.load import copy_to_server, load_figures_path, load_sqlite
from bench.servers import PEERS_VENV, ROOT, VENV_BIN, System, drive, running

DATA = ROOT / "bench" / "data"
OUT = ROOT / "bench" / "out"
# The light-load latency runs (growth target): one request in flight. With two, both
# connections may land on one worker (which process accepts is the kernel's race), and
# then each request waits for the other: a median of twice the service time.
LIGHT_CONNECTIONS = 1
PG_ADMIN = os.environ.get("BENCH_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MY_ADMIN = os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")
PEER_PINS = ("datasette==0.65.5", "asterisk-cdr-api==1.0.6")
ASTERISK_MARK = "; written by the voip24h bench (bench/run.py)"


@dataclass
class Options:
    sizes: list[int]
    server_sizes: list[int]
    seconds: float = 10.0
    connections: int = 32
    quick: bool = False
    backends: tuple[str, ...] = ("sqlite", "postgresql", "mysql")
    peers: bool = True
    soak_seconds: float = 60.0
    big_answer: int = 200_000
    docs: Path | None = ROOT / "docs"
    workers: int = 2
    import_rows: int = 1_000_000
    memory: bool = True
    speed: bool = True
    log: Any = print


@dataclass
class Results:
    started: str
    options: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- datasets --------------------------------------------------------------------------


def sqlite_dataset(shape: Shape, opts: Options, results: Results) -> Path:
    """The dataset as a SQLite file (built once, then cached in bench/data)."""
    DATA.mkdir(parents=True, exist_ok=True)
    csv_path, db_path = DATA / f"{shape.name}.csv", DATA / f"{shape.name}.db"
    with _building(DATA / f"{shape.name}.lock"):  # two runs must not build one dataset
        _build_sqlite(shape, opts, results, csv_path, db_path)
        upgrade_schema(f"sqlite:///{db_path}", opts)
    add_partners(f"sqlite:///{db_path}", shape)
    return db_path


def upgrade_schema(url: str, opts: Options) -> None:
    """A dataset cached by an older checkout gets this one's schema, as an operator's
    ``voip24h db upgrade`` would give it (new indexes are built on the data)."""
    from voip24h.db import migrate
    from voip24h.db.engine import make_engine

    engine = make_engine(url)
    try:
        if not migrate.is_current(engine):
            opts.log(f"upgrading the schema of {url.rpartition('/')[2]}")
            started = time.perf_counter()
            migrate.upgrade(engine)
            opts.log(f"  upgraded in {time.perf_counter() - started:.0f} s")
    finally:
        engine.dispose()


@contextmanager
def _building(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (waits for another run building the same data)."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build_sqlite(
    shape: Shape, opts: Options, results: Results, csv_path: Path, db_path: Path
) -> None:
    if not db_path.exists():
        if not csv_path.exists():
            opts.log(f"generating {shape.rows:,} CDR rows -> {csv_path.name}")
            started = time.perf_counter()
            write_master_csv(shape, csv_path)
            opts.log(f"  generated in {time.perf_counter() - started:.0f} s")
        opts.log(f"loading {csv_path.name} into SQLite")
        stats = load_sqlite(csv_path, db_path, log=opts.log)
        results.loads.append({"size": shape.rows, "backend": "sqlite", **stats})
        opts.log(
            f"  {stats['rows']:,} rows, {stats['records']:,} records in {stats['seconds']:.0f} s"
        )
        if not opts.quick:
            csv_path.unlink()  # the database holds the rows; the CSV is large
    elif load_figures_path(db_path).exists():  # built by an earlier run: say how it loaded
        figures = json.loads(load_figures_path(db_path).read_text())
        results.loads.append({"size": shape.rows, "backend": "sqlite", "cached": True, **figures})


def add_partners(url: str, shape: Shape) -> None:
    """Bench partners (one per partner tenant, plus an unscoped one) with fixed secrets.

    A cached dataset is first brought to the current schema (new migrations add indexes).
    """
    from voip24h.db import migrate
    from voip24h.db.engine import make_engine
    from voip24h.service import partner_admin

    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        wanted = [
            (f"bench-{shape.tenant(t)}", [shape.tenant(t)]) for t in workload.partner_tenants(shape)
        ]
        wanted.append((workload.ALL_PARTNER, []))
        for name, codes in wanted:
            if not partner_admin.find_exists(engine, name):
                partner_admin.add(engine, name, codes, [], secret=workload.secret_for(name))
    finally:
        engine.dispose()


def _mark_loaded(url: str, name: str) -> None:
    from sqlalchemy import delete, insert

    from voip24h.db.engine import sync_url
    from voip24h.db.schema import meta

    engine = create_engine(sync_url(url))
    with engine.begin() as db:
        db.execute(delete(meta).where(meta.c.key == "bench_loaded"))
        db.execute(insert(meta).values(key="bench_loaded", value=name))
    engine.dispose()


def _database_url(admin: str, name: str) -> str:
    base, _, _ = admin.rpartition("/")
    return f"{base}/{name}"


def server_dataset(
    backend: str, shape: Shape, sqlite_db: Path, opts: Options, results: Results
) -> str:
    """The same data in a PostgreSQL or MariaDB database ``voip24h_bench_<size>``."""
    name = f"voip24h_bench_{label(shape.rows).lower()}_v2"
    admin_url = PG_ADMIN if backend == "postgresql" else MY_ADMIN
    from voip24h.db.engine import sync_url

    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    url = _database_url(admin_url, name)
    tables = ("call_records", "cdr") if backend == "mysql" else ("call_records",)
    with admin.connect() as conn:
        if backend == "postgresql":
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        else:
            exists = conn.scalar(
                text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                {"n": name},
            )
        done = False
        if exists:
            check = create_engine(sync_url(url))
            try:
                with check.connect() as db:
                    from voip24h.db.schema import meta

                    found = db.scalar(select(meta.c.value).where(meta.c.key == "bench_loaded"))
                    done = found == shape.name
            except Exception:
                done = False
            check.dispose()
        if not done:
            if exists:
                conn.execute(
                    text(
                        f"DROP DATABASE {name}"
                        + (" WITH (FORCE)" if backend == "postgresql" else "")
                    )
                )
            charset = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mysql" else ""
            conn.execute(text(f"CREATE DATABASE {name}{charset}"))
    admin.dispose()
    if not done:
        opts.log(f"copying {shape.name} into {backend} database {name}")
        seconds = copy_to_server(sqlite_db, url, tables, log=opts.log)
        results.loads.append(
            {"size": shape.rows, "backend": backend, "seconds": seconds, "copied": True}
        )
        _mark_loaded(url, shape.name)
    else:
        upgrade_schema(url, opts)
    add_partners(url, shape)
    return url


# --- systems ---------------------------------------------------------------------------


def _uvicorn(target: str, workers: int, factory: bool = False) -> list[str]:
    argv = [str(VENV_BIN / "uvicorn"), target, "--host", "127.0.0.1", "--port", "{port}",
            "--workers", str(workers), "--no-access-log", "--log-level", "info"]  # fmt: skip
    return argv + (["--factory"] if factory else [])


def ours(backend: str, url: str, opts: Options, **env: str) -> System:
    """The server, started the way an operator starts it: ``voip24h serve --workers N``."""
    settings = {
        "VOIP24H_DATABASE_URL": url,
        # One bench client sends thousands of requests a second: per-partner limits off.
        "VOIP24H_RATE_LIMIT_PER_SECOND": "0",
        "VOIP24H_RATE_LIMIT_ROWS_PER_MINUTE": "0",
        "VOIP24H_AUTH_FAILURES_PER_MINUTE": "0",
        **env,
    }
    argv = [str(VENV_BIN / "voip24h"), "serve", "--port", "{port}", "--workers", str(opts.workers)]
    return System(f"voip24h-{backend}", backend, argv, settings, workers=opts.workers)


def lean(backend: str, url: str, opts: Options, shape: Shape) -> System:
    argv = _uvicorn("bench.lean:app", opts.workers, True)
    env = {"LEAN_DB": url, "LEAN_TENANTS": workload.lean_tenants(shape)}
    return System(f"lean-{backend}", backend, argv, env, workers=opts.workers)


def ceiling(opts: Options) -> System:
    argv = _uvicorn("bench.lean:ceiling", opts.workers)
    return System("bare-asgi", "-", argv, workers=opts.workers)


def ensure_peers(opts: Options) -> bool:
    """The peers' own venv (never the project's): datasette and asterisk-cdr-api."""
    pip = PEERS_VENV / "bin" / "pip"
    if (
        not (PEERS_VENV / "bin" / "datasette").exists()
        or not (PEERS_VENV / "bin" / "asterisk-cdr-api").exists()
    ):
        opts.log(f"creating {PEERS_VENV} with {' '.join(PEER_PINS)}")
        subprocess.run(["python3", "-m", "venv", str(PEERS_VENV)], check=True)
        done = subprocess.run([str(pip), "install", "-q", *PEER_PINS], check=False)
        if done.returncode != 0:
            return False
    return True


def datasette(db: Path) -> System:
    argv = [str(PEERS_VENV / "bin" / "datasette"), "serve", "-i", str(db), "--host", "127.0.0.1",
            "--port", "{port}", "--setting", "max_returned_rows", "200000",
            "--setting", "sql_time_limit_ms", "20000", "--setting", "num_sql_threads", "3"]  # fmt: skip
    return System("datasette", "sqlite", argv)


def write_asterisk_config(database: str) -> str | None:
    """Asterisk's config files as FreePBX writes them, pointing at the bench's MariaDB data.

    asterisk-cdr-api reads them from fixed paths under /etc. Files that exist and were
    not written by the bench are left alone (and the peer is skipped)."""
    files = {
        Path(
            "/etc/asterisk/cdr_adaptive_odbc.conf"
        ): "[first]\nconnection=asteriskcdrdb\ntable=cdr\nalias start => calldate\n",
        Path("/etc/asterisk/res_odbc.conf"): (
            "[asteriskcdrdb]\nenabled => yes\ndsn => MySQL-asteriskcdrdb\n"
            "pre-connect => yes\nusername => root\npassword => \n"
        ),
        Path(
            "/etc/odbc.ini"
        ): f"[MySQL-asteriskcdrdb]\nDescription=MySQL connection to 'asteriskcdrdb' database\ndriver=MySQL\nserver=127.0.0.1\ndatabase={database}\nPort=3306\nOption=3\n",
    }
    for path in files:
        if path.exists() and ASTERISK_MARK not in path.read_text(errors="replace"):
            return f"{path} exists and was not written by the bench"
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{ASTERISK_MARK}\n{body}")
    return None


def asterisk(key: str) -> System:
    argv = [str(PEERS_VENV / "bin" / "asterisk-cdr-api")]
    return System(
        "asterisk-cdr-api",
        "mysql",
        argv,
        {"CDR_HOST": "127.0.0.1", "CDR_PORT": "{port}", "CDR_API_KEY": key},
        ready_path="/health",
    )


# --- measuring -------------------------------------------------------------------------


def post(port: int, line: str) -> bytes:
    method, target, body = line.rstrip("\n").split("\t", 2)
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{target}",
        data=body.encode() if body else None,
        method=method,
        headers={"Content-Type": "application/json"} if body else {},
    )
    with urllib.request.urlopen(req, timeout=120) as answer:
        return bytes(answer.read())


def measure(
    system: System,
    kind: str,
    size: int,
    requests: Path,
    opts: Options,
    results: Results,
    connections: int | None = None,
    seconds: float | None = None,
    api_key: str = "",
) -> dict[str, Any]:
    conns = connections or opts.connections
    duration = seconds or opts.seconds
    if not opts.quick:
        drive(system.port, requests, min(3.0, duration), conns, api_key=api_key)  # warm up
    figures = drive(system.port, requests, duration, conns, api_key=api_key)
    row = {
        "system": system.name,
        "backend": system.backend,
        "size": size,
        "kind": kind,
        "connections": conns,
        **figures,
    }
    results.runs.append(row)
    opts.log(
        f"  {system.name:18} {label(size):>4} {kind:12} {figures['rps']:9.1f} req/s  "
        f"p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms  errors {figures['errors']:.0f}"
    )
    return row


def measure_interleaved(
    systems: list[System],
    kind: str,
    size: int | list[int],
    requests: Path | list[Path],
    opts: Options,
    results: Results,
    connections: int | None = None,
    seconds: float | None = None,
) -> None:
    """Every system in turn, in short slices (A B C A B C ...), so that a change in the
    shared machine's load hits them all alike; figures are summed over the slices
    (req/s) or their median taken (p50, p99). ``size`` and ``requests``: one for all,
    or one per system, in the same order (a peer with its own request syntax, or the
    same server on tables of different sizes)."""
    conns = connections or opts.connections
    duration = seconds or opts.seconds
    slices = 1 if opts.quick else max(1, round(duration / 2))
    files = requests if isinstance(requests, list) else [requests] * len(systems)
    sizes = size if isinstance(size, list) else [size] * len(systems)
    if not opts.quick:
        for system, file in zip(systems, files, strict=True):
            drive(system.port, file, min(3.0, duration), conns)  # warm up
    parts: list[list[dict[str, float]]] = [[] for _ in systems]
    for _ in range(slices):
        for system, file, got in zip(systems, files, parts, strict=True):
            got.append(drive(system.port, file, duration / slices, conns))
    for system, size_of, got in zip(systems, sizes, parts, strict=True):
        requests_done = sum(p["requests"] for p in got)
        seconds = sum(p["seconds"] for p in got)
        figures = {
            "requests": requests_done,
            "seconds": seconds,
            "rps": requests_done / seconds if seconds else 0.0,
            "p50_ms": statistics.median(p["p50_ms"] for p in got),
            "p90_ms": statistics.median(p["p90_ms"] for p in got),
            "p99_ms": statistics.median(p["p99_ms"] for p in got),
            "max_ms": max(p["max_ms"] for p in got),
            "errors": sum(p["errors"] for p in got),
            "slices": len(got),
        }
        results.runs.append(
            {"system": system.name, "backend": system.backend, "size": size_of, "kind": kind,
             "connections": conns, **figures}
        )  # fmt: skip
        opts.log(
            f"  {system.name:24} {label(size_of):>4} {kind:12} {figures['rps']:9.1f} req/s  "
            f"p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms  "
            f"errors {figures['errors']:.0f}"
        )


def same_answers(a: int, b: int, requests: Path, count: int = 5) -> bool:
    """True when both servers give byte-identical answers to the first requests."""
    lines = requests.read_text().splitlines()[:count]
    try:
        return all(post(a, line) == post(b, line) for line in lines)
    except OSError:  # an HTTP error status or a dead server
        return False


def pair(
    backend: str,
    url: str,
    shape: Shape,
    files: dict[str, Path],
    opts: Options,
    results: Results,
    light: bool = True,
) -> None:
    """The server and its lean reference, side by side, for every request type; also
    the server with its audit trail off, to show what that feature costs; and unless
    ``light`` is off, the server alone at light load."""
    a, b = ours(backend, url, opts), lean(backend, url, opts, shape)
    c = ours(backend, url, opts, VOIP24H_AUDIT_ENABLED="0")
    c.name += "-noaudit"
    with running(a, OUT / "logs"), running(b, OUT / "logs"), running(c, OUT / "logs"):
        for kind in workload.KINDS:
            identical = same_answers(a.port, b.port, files[kind])
            results.checks.append(
                {
                    "check": "identical answers",
                    "backend": backend,
                    "size": shape.rows,
                    "kind": kind,
                    "ok": identical,
                }
            )
            if not identical:
                opts.log(f"  !! {kind}: the server and the lean reference answer differently")
            measure_interleaved([a, b, c], kind, shape.rows, files[kind], opts, results)
        if light:
            # Latency at light load (LIGHT_CONNECTIONS in flight): at saturation a median
            # is mostly queueing, i.e. the inverse of the throughput.
            alone = dataclasses.replace(a, name=f"{a.name}{workload.LIGHT}")
            for kind in workload.KINDS:
                seconds = max(2.0, opts.seconds / 4)
                measure(
                    alone, kind, shape.rows, files[kind], opts, results, LIGHT_CONNECTIONS, seconds
                )


def growth(
    dbs: dict[int, Path], files: dict[int, dict[str, Path]], opts: Options, results: Results
) -> None:
    """The server on every SQLite table size at once, at light load (LIGHT_CONNECTIONS
    in flight), the sizes measured in turn in short slices: the growth targets compare
    their medians, so a change in the shared machine's speed between two parts of the
    run must not pass for an effect of the table's size (measured apart, a 0.44 ms
    median at 1M once came out 0.33 ms on a faster minute). ``files``: each size's
    request files by kind."""
    sizes = sorted(opts.sizes)
    systems = [ours("sqlite", f"sqlite:///{dbs[size]}", opts) for size in sizes]
    opts.log(f"SQLite, light load, {' and '.join(label(size) for size in sizes)} rows in turn")
    with ExitStack() as stack:
        for system, size in zip(systems, sizes, strict=True):
            system.name += workload.LIGHT  # the same name at every size: the report's key
            log = f"{system.name}-{label(size)}"
            stack.enter_context(running(system, OUT / "logs", log_name=log))
        for kind in workload.KINDS:
            seconds = max(2.0, opts.seconds / 2)
            requests = [files[size][kind] for size in sizes]
            measure_interleaved(
                systems, kind, sizes, requests, opts, results, LIGHT_CONNECTIONS, seconds
            )


def request_files(shape: Shape, db: Path) -> dict[str, dict[str, Path]]:
    folder = OUT / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Path]] = {"voip": {}, "datasette": {}, "asterisk": {}}
    for kind in workload.KINDS:
        reqs = workload.make_requests(shape, kind)
        stem = f"{label(shape.rows)}-{kind}"
        files["voip"][kind] = workload.write_voip(reqs, folder / f"{stem}.tsv")
        files["datasette"][kind] = workload.write_datasette(
            reqs, db.stem, folder / f"{stem}-datasette.tsv"
        )
        if kind == "getUserDate":
            files["asterisk"][kind] = workload.write_asterisk(reqs, folder / f"{stem}-asterisk.tsv")
    return files


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import version

    def ver(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "-"

    def cmd(*argv: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except Exception:
            return "-"

    cpu = "-"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    peers = {}
    for name in ("datasette", "asterisk-cdr-api", "fastapi", "pymysql"):
        found = list(
            (PEERS_VENV / "lib").glob(f"python*/site-packages/{name.replace('-', '_')}-*.dist-info")
        )
        found += list((PEERS_VENV / "lib").glob(f"python*/site-packages/{name}-*.dist-info"))
        found += (
            list((PEERS_VENV / "lib").glob("python*/site-packages/PyMySQL-*.dist-info"))
            if name == "pymysql"
            else []
        )
        peers[name] = found[0].name.split("-")[1].removesuffix(".dist") if found else "-"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_average_at_start": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "postgresql": cmd("psql", "--version"),
        "mariadb": cmd("mariadb", "--version"),
        "wrk": cmd("wrk", "--version"),
        "packages": {
            n: ver(n)
            for n in (
                "voip24h",
                "starlette",
                "uvicorn",
                "uvloop",
                "httptools",
                "orjson",
                "asyncpg",
                "asyncmy",
                "SQLAlchemy",
            )
        },
        "peers": peers,
    }


def import_rate(opts: Options, results: Results) -> None:
    """The ingestion figures of bench/import_bench.py (issue 3), when it is there."""
    if opts.import_rows <= 0:
        return
    try:
        from bench import import_bench  # type: ignore[attr-defined]
    except ImportError as exc:
        results.notes.append(f"import rate: bench/import_bench.py not available ({exc})")
        return
    runner = getattr(import_bench, "run", None) or getattr(import_bench, "main", None)
    if runner is None:
        results.notes.append("import rate: bench/import_bench.py has no run() function")
        return
    rows = opts.import_rows
    opts.log(f"import rate (bench/import_bench.py, {rows:,} rows)")
    try:
        figures = runner(rows=rows) if "rows" in runner.__code__.co_varnames else runner()
    except Exception as exc:  # the import bench belongs to another issue: report, go on
        results.notes.append(f"import rate: bench/import_bench.py failed: {exc!r}")
        opts.log(f"  failed: {exc!r}")
        return
    results.checks.append(
        {"check": "import rate", **(figures if isinstance(figures, dict) else {"result": figures})}
    )
    opts.log(f"  {figures}")


def memory(opts: Options, results: Results, db: Path, requests: Path) -> None:
    """The big getDate answer and the long run, on the smallest SQLite dataset."""
    from bench.memory import memory_checks

    opts.log("memory: one big getDate answer, and RSS over a long run")
    url = f"sqlite:///{db}"
    big, long = memory_checks(
        ours("sqlite", url, opts),
        db,
        opts.big_answer,
        requests,
        opts.soak_seconds,
        opts.connections,
        OUT / "logs",
    )
    big["target_records"] = opts.big_answer
    results.checks.append(big)
    opts.log(
        f"  {big['records']:,} records ({big['bytes'] / 1e6:.1f} MB) in {big['seconds']:.1f} s: "
        f"RSS +{big['growth_mb']:.1f} MB"
    )
    results.checks.append(long)
    opts.log(
        f"  {long['seconds']:.0f} s at {long['rps']:.0f} req/s: "
        f"RSS {long['rss_settled_mb']:.1f} -> {long['rss_end_mb']:.1f} MB"
    )


def run(opts: Options) -> Results:
    """Everything, in order; returns the results (also written to bench/out)."""
    from bench.servers import ensure_wrk

    ensure_wrk()
    results = Results(
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        {
            "sizes": opts.sizes,
            "server_sizes": opts.server_sizes,
            "seconds": opts.seconds,
            "connections": opts.connections,
            "workers": opts.workers,
            "quick": opts.quick,
            "backends": list(opts.backends),
            "peers": opts.peers,
        },
    )
    results.machine = machine()
    logs = OUT / "logs"
    dbs: dict[int, Path] = {}
    for size in sorted(set(opts.sizes) | set(opts.server_sizes)):
        dbs[size] = sqlite_dataset(Shape(size), opts, results)
    smallest, largest = min(opts.sizes), max(opts.sizes)
    first_files = request_files(Shape(smallest), dbs[smallest])
    if opts.speed:
        opts.log("ceiling: bare ASGI app, fixed 4.5 KB answer")
        bare = ceiling(opts)
        with running(bare, logs):
            measure(bare, "fixed", 0, first_files["voip"]["getUserDate"], opts, results)
        sqlite_files: dict[int, dict[str, Path]] = {}
        for size in opts.sizes:
            shape = Shape(size)
            files = request_files(shape, dbs[size])
            opts.log(f"SQLite, {label(size)} rows")
            sqlite_files[size] = files["voip"]
            pair(
                "sqlite", f"sqlite:///{dbs[size]}", shape, files["voip"], opts, results, light=False
            )
            if opts.peers and size == largest and ensure_peers(opts):
                # Side by side with the server, as with the lean references: measured
                # apart, whichever ran while the machine was busier would lose.
                peer = datasette(dbs[size])
                mine = ours("sqlite", f"sqlite:///{dbs[size]}", opts)
                mine.name += "-vs-datasette"
                with running(peer, logs), running(mine, logs):
                    for kind in workload.KINDS:
                        both = [files["voip"][kind], files["datasette"][kind]]
                        measure_interleaved([mine, peer], kind, size, both, opts, results)
        growth(dbs, sqlite_files, opts, results)
        for backend in ("postgresql", "mysql"):
            if backend not in opts.backends:
                continue
            for size in opts.server_sizes:
                shape = Shape(size)
                try:
                    url = server_dataset(backend, shape, dbs[size], opts, results)
                except Exception as exc:
                    results.notes.append(f"{backend}: not measured ({str(exc).splitlines()[0]})")
                    opts.log(f"{backend}: skipped: {exc}")
                    break
                files = request_files(shape, dbs[size])
                opts.log(f"{backend}, {label(size)} rows")
                pair(backend, url, shape, files["voip"], opts, results)
                if (
                    backend == "mysql"
                    and opts.peers
                    and size == min(opts.server_sizes)
                    and ensure_peers(opts)
                ):
                    refused = write_asterisk_config(url.rpartition("/")[2])
                    if refused:
                        results.notes.append(f"asterisk-cdr-api: not measured ({refused})")
                    else:
                        peer = asterisk("bench-key")
                        with running(peer, logs):
                            measure(
                                peer,
                                "getUserDate",
                                size,
                                files["asterisk"]["getUserDate"],
                                opts,
                                results,
                                connections=2,
                                seconds=max(opts.seconds, 5 if opts.quick else 60),
                                api_key="bench-key",
                            )
    if opts.memory:
        files = request_files(Shape(largest), dbs[largest])
        memory(opts, results, dbs[largest], files["voip"]["getUserDate"])
    import_rate(opts, results)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (OUT / f"results-{stamp}.json").write_text(json.dumps(results.__dict__, indent=1, default=str))
    return results
