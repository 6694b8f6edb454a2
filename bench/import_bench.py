"""Import throughput and memory: ``voip24h import`` beside a raw bulk insert of the same rows.

Self-contained: ``run(rows=...)`` returns a dict of figures, so the main bench can
include it; ``python bench/import_bench.py --rows 1000000`` prints them as JSON.

* The input is a generated Master.csv (21 columns: loguniqueid, loguserfield,
  newcdrcolumns) shaped like a real PBX's: outbound, inbound and internal calls,
  unanswered calls with an empty answer, ring-group forks sharing a uniqueid.
* ``import`` runs the real command (``python -m voip24h import``) in a child
  process on an empty, migrated SQLite database; its wall time gives rows/s and
  the child's peak RSS (``wait4`` ru_maxrss) the memory figure.
* ``raw`` is the limit: the same rows, already parsed, copied by sqlite3's
  ``executemany`` into another empty, migrated database (same schema and
  indexes), committed in batches of the same size. No parsing, no keys, no
  records: just the database's insert speed for these rows.
  ``raw_with_records`` also inserts the call_records rows the import derived
  (what the import must write), so it is the limit for the whole job.
* Ratios are given on wall time and on CPU time (the child's user+system time
  against the raw inserts' process time): on a shared machine CPU time is the
  steadier figure.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from voip24h.db.engine import BULK_WAL_AUTOCHECKPOINT

COLUMNS = 21
_STRINGS = 20  # quoted fields per line; the rest are bare integers or times


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def generate(path: Path, rows: int, seed: int = 24) -> int:
    """Write ``rows`` Master.csv lines (the 21-column layout) to ``path``; return its size."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 7, 0, 0)
    written = 0
    sequence = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        buffer: list[str] = []
        while written < rows:
            start += timedelta(seconds=rng.randint(1, 9))
            uniqueid = f"{int(start.timestamp())}.{written}"
            ext = str(rng.randint(100, 399))
            kind = rng.random()
            forks = 3 if kind < 0.05 else 1  # a ring group: several rows, one uniqueid
            for fork in range(forks):
                if written >= rows:
                    break
                answered = rng.random() < 0.7 if fork == 0 else False
                duration = rng.randint(5, 600)
                billsec = max(duration - rng.randint(3, 20), 0) if answered else 0
                if kind < 0.4:  # outbound
                    src, dst = ext, f"09{rng.randint(0, 99_999_999):08d}"
                    channel, dstchannel = f"PJSIP/{ext}-{written:08x}", "PJSIP/trunk-0001"
                elif kind < 0.8:  # inbound to an extension
                    src, dst = f"09{rng.randint(0, 99_999_999):08d}", ext
                    channel, dstchannel = "PJSIP/trunk-0002", f"PJSIP/{ext}-{written:08x}"
                else:  # internal
                    other = str(rng.randint(100, 399))
                    src, dst = ext, other
                    channel, dstchannel = f"PJSIP/{ext}-{written:08x}", f"PJSIP/{other}-{fork:08x}"
                answer = start + timedelta(seconds=duration - billsec) if answered else None
                end = start + timedelta(seconds=duration)
                fields = [
                    _quote("acme"),
                    _quote(src),
                    _quote(dst),
                    _quote("from-internal"),
                    _quote(f'"Ext {src}" <{src}>'),
                    _quote(channel),
                    _quote(dstchannel),
                    _quote("Dial"),
                    _quote(f"PJSIP/{dst}@trunk,60"),
                    _quote(start.strftime("%Y-%m-%d %H:%M:%S")),
                    _quote(answer.strftime("%Y-%m-%d %H:%M:%S")) if answer else "",
                    _quote(end.strftime("%Y-%m-%d %H:%M:%S")),
                    str(duration),
                    str(billsec),
                    _quote("ANSWERED" if answered else "NO ANSWER"),
                    _quote("DOCUMENTATION"),
                    _quote(uniqueid),
                    _quote(""),
                    _quote(""),
                    _quote(uniqueid),
                    str(sequence),
                ]
                sequence += 1
                written += 1
                buffer.append(",".join(fields))
                if len(buffer) >= 10_000:
                    out.write("\n".join(buffer) + "\n")
                    buffer = []
        if buffer:
            out.write("\n".join(buffer) + "\n")
    return path.stat().st_size


def _empty_database(path: Path) -> str:
    """An empty, migrated SQLite database at ``path``; its URL."""
    from voip24h.db import migrate
    from voip24h.db.engine import make_engine

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _high_water_mib(pid: int) -> int:
    """A process's peak RSS so far (the kernel's VmHWM), in MiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


class _Peaks:
    """Peak RSS of a process and of each of its children (the parsing worker), polled."""

    def __init__(self, pid: int):
        self.pid = pid
        self.main = 0
        self.children: dict[int, int] = {}

    def poll(self) -> None:
        self.main = max(self.main, _high_water_mib(self.pid))
        for child in _children(self.pid):
            self.children[child] = max(self.children.get(child, 0), _high_water_mib(child))


def _child(command: list[str]) -> tuple[float, float, int, str, _Peaks]:
    """Run a command; (wall s, CPU s, peak RSS MiB by wait4, stdout, polled peaks)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    peaks = _Peaks(process.pid)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()))  # type: ignore[union-attr]
    errors: list[bytes] = []
    err_reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    err_reader.start()
    while process.poll() is None:  # wait4 below reaps it: poll() only peeks here
        peaks.poll()
        time.sleep(0.2)
    reader.join()
    err_reader.join()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children's CPU, summed
    if process.returncode not in (0, 1):  # 1: some lines rejected (reported in the summary)
        raise RuntimeError(f"{command[:4]} failed: {b''.join(errors).decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    rss = max([peaks.main, *peaks.children.values()])
    return seconds, cpu, rss, b"".join(chunks).decode(), peaks


def raw_insert(
    source_db: Path, target_db: Path, batch_size: int, tables: tuple[str, ...] = ("cdr",)
) -> tuple[float, float, int]:
    """Copy the imported rows of ``tables`` into an empty database with executemany.

    Returns (wall seconds, CPU seconds, cdr rows); only the inserts and commits are
    timed, not reading the source.
    """
    _empty_database(target_db)
    source = sqlite3.connect(source_db)
    target = sqlite3.connect(target_db)
    # The import's own connection settings (db/engine.py make_engine(bulk=True)), so
    # the reference differs from the import by the work only.
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    target.execute(f"PRAGMA wal_autocheckpoint={BULK_WAL_AUTOCHECKPOINT}")
    cursors = []
    for table in tables:
        names = [r[1] for r in source.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
        quoted = ", ".join(f'"{n}"' for n in names)
        insert = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(names))})"
        order = "id" if table == "cdr" else "rowid"
        cursors.append((insert, source.execute(f"SELECT {quoted} FROM {table} ORDER BY {order}")))
    count = 0
    wall = cpu = 0.0
    while True:
        batches = [(insert, cursor.fetchmany(batch_size)) for insert, cursor in cursors]
        if not any(rows for _, rows in batches):
            break
        started, started_cpu = time.perf_counter(), time.process_time()
        for insert, rows in batches:
            if rows:
                target.executemany(insert, rows)
        target.commit()
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        count += len(batches[0][1])
    source.close()
    target.close()
    return wall, cpu, count


def run(
    rows: int = 1_000_000,
    workdir: str | Path | None = None,
    batch_size: int = 5000,
    keep: bool = False,
) -> dict[str, Any]:
    """Generate, import and raw-insert ``rows`` rows on SQLite; return the figures."""
    own = workdir is None
    work = Path(workdir or tempfile.mkdtemp(prefix="voip24h-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = work / f"Master-{rows}.csv"
        if not csv_path.exists():
            generate(csv_path, rows)
        size = csv_path.stat().st_size
        url = _empty_database(work / "import.db")
        command = [sys.executable, "-m", "voip24h", "import", str(csv_path)]
        command += ["--db", url, "--quiet", "--json", "--batch-size", str(batch_size)]
        seconds, cpu, rss_mib, out, peaks = _child(command)
        summary = json.loads(out)
        raw_s, raw_cpu, raw_rows = raw_insert(work / "import.db", work / "raw.db", batch_size)
        full_s, full_cpu, _ = raw_insert(
            work / "import.db", work / "raw-full.db", batch_size, ("cdr", "call_records")
        )
        imported = summary["imported"]
        return {
            "rows": rows,
            "file_mib": round(size / 2**20, 1),
            "imported": imported,
            "rejected": summary["rejected"],
            "records": summary["records"],
            "batch_size": batch_size,
            "database": "sqlite",
            "import_seconds": round(seconds, 2),
            "import_cpu_seconds": round(cpu, 2),
            "import_rows_per_s": round(imported / seconds),
            "import_peak_rss_mib": rss_mib,
            "import_peak_rss_main_mib": peaks.main,
            "import_peak_rss_worker_mib": max(peaks.children.values(), default=0),
            "raw_insert_seconds": round(raw_s, 2),
            "raw_insert_rows_per_s": round(raw_rows / raw_s),
            "import_vs_raw": round(raw_s / seconds, 3),
            "import_vs_raw_cpu": round(raw_cpu / cpu, 3),
            "raw_with_records_seconds": round(full_s, 2),
            "raw_with_records_rows_per_s": round(raw_rows / full_s),
            "import_vs_raw_with_records": round(full_s / seconds, 3),
            "import_vs_raw_with_records_cpu": round(full_cpu / cpu, 3),
        }
    finally:
        if own and not keep:
            shutil.rmtree(work, ignore_errors=True)


def run_file(
    csv_path: Path, db_path: Path, flags: list[str], batch_size: int = 5000
) -> dict[str, Any]:
    """``voip24h import`` of an existing file into a new SQLite database: rate and memory.

    No raw-insert reference here (the bench's datasets are too big to insert twice in
    a few minutes); the peak RSS of the importing process and of its parsing worker
    is what a file of any size must keep flat.
    """
    url = _empty_database(db_path)
    command = [sys.executable, "-m", "voip24h", "import", str(csv_path), *flags]
    command += ["--db", url, "--quiet", "--json", "--batch-size", str(batch_size)]
    seconds, cpu, rss_mib, out, peaks = _child(command)
    summary = json.loads(out)
    return {
        "file": str(csv_path),
        "file_mib": round(csv_path.stat().st_size / 2**20, 1),
        "imported": summary["imported"],
        "rejected": summary["rejected"],
        "records": summary["records"],
        "import_seconds": round(seconds, 1),
        "import_cpu_seconds": round(cpu, 1),
        "import_rows_per_s": round(summary["imported"] / seconds),
        "import_peak_rss_mib": rss_mib,
        "import_peak_rss_main_mib": peaks.main,
        "import_peak_rss_worker_mib": max(peaks.children.values(), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable)")
    parser.add_argument("--workdir", help="keep files here (generated files are reused)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--file", type=Path, help="import this Master.csv instead (no raw run)")
    parser.add_argument("--db", type=Path, help="with --file: the SQLite file to create")
    parser.add_argument("--flags", default="", help="with --file: layout flags for import")
    args = parser.parse_args()
    if args.file:
        if args.db is None:
            parser.error("--file needs --db")
        result = run_file(args.file, args.db, args.flags.split(), args.batch_size)
        print(json.dumps(result, indent=2))
        return
    results = [run(rows, args.workdir, args.batch_size) for rows in (args.rows or [1_000_000])]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
