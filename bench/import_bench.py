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
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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


def _child(command: list[str]) -> tuple[float, float, int, str]:
    """Run a command; (wall seconds, CPU seconds, peak RSS in MiB, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    out = process.stdout.read()
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[:4]} failed: {err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss // 1024, out.decode()


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
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
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
        seconds, cpu, rss_mib, out = _child(command)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable)")
    parser.add_argument("--workdir", help="keep files here (generated files are reused)")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    results = [run(rows, args.workdir, args.batch_size) for rows in (args.rows or [1_000_000])]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
