"""Memory checks: one very large getDate answer, and RSS over a long run."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bench import workload
from bench.servers import System, drive, rss_mb, running


def window_with(db: Path, records: int) -> tuple[date, date, int]:
    """The shortest window of whole days ending on the data's last day that holds at
    least ``records`` records, and how many it holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    days = conn.execute(
        "SELECT substr(call_date, 1, 10) AS day, count(*) FROM call_records "
        "GROUP BY day ORDER BY day DESC"
    ).fetchall()
    conn.close()
    total = 0
    last = datetime.strptime(days[0][0], "%Y-%m-%d").date()
    first = last
    for day, count in days:
        total += count
        first = datetime.strptime(day, "%Y-%m-%d").date()
        if total >= records:
            break
    return first, last, total


def _request(port: int, first: date, last: date) -> tuple[int, int]:
    body = {
        "requestType": "getDate",
        "partnerSecret": workload.secret_for(workload.ALL_PARTNER),
        "data": {"fromDate": first.strftime("%d/%m/%Y"), "toDate": last.strftime("%d/%m/%Y")},
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{workload.PATH}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=300) as answer:
        data = answer.read()
    doc = json.loads(data)
    if doc.get("respCode") != 0:
        raise RuntimeError(f"big answer refused: {data[:300]!r}")
    return len(doc["data"]), len(data)


class Sampler:
    """Samples a process tree's RSS every ``every`` seconds in a thread."""

    def __init__(self, pid: int, every: float):
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - started, rss_mb(self.pid)))
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(rss for _, rss in self.samples)


def memory_checks(
    system: System,
    db: Path,
    records: int,
    requests: Path,
    seconds: float,
    connections: int,
    log_dir: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One server: RSS growth through one getDate of >= ``records`` records, then RSS
    sampled through a ``seconds`` long wrk run."""
    first, last, expected = window_with(db, records)
    system.env["VOIP24H_MAX_RECORDS"] = str(max(expected, 100_000))
    with running(system, log_dir) as proc:
        for _ in range(2):  # warm: connections, caches, statements
            _request(system.port, last, last)
        time.sleep(0.5)
        before = rss_mb(proc.pid)
        started = time.perf_counter()
        with Sampler(proc.pid, 0.01) as sampler:
            count, size = _request(system.port, first, last)
        took = time.perf_counter() - started
        after = rss_mb(proc.pid)
        total = rss_mb(proc.pid, "VmRSS")
        big = {
            "check": "big getDate answer",
            "records": count,
            "expected": expected,
            "bytes": size,
            "seconds": took,
            "rss_before_mb": before,
            "rss_peak_mb": sampler.peak,
            "rss_after_mb": after,
            "vmrss_after_mb": total,
            "measure": "RssAnon (heap) of the server's processes",
            "growth_mb": sampler.peak - before,
            "window": f"{first:%d/%m/%Y}..{last:%d/%m/%Y}",
        }
        result: dict[str, Any] = {}
        drive(system.port, requests, min(3.0, seconds), connections)  # warm up
        with Sampler(proc.pid, max(0.5, seconds / 30)) as soak:
            result.update(drive(system.port, requests, seconds, connections))
    samples = soak.samples
    settled = [rss for t, rss in samples if t >= seconds * 0.2] or [samples[-1][1]]
    long = {
        "check": "RSS over a long run",
        "seconds": seconds,
        "rps": result.get("rps", 0.0),
        "errors": result.get("errors", 0.0),
        "rss_start_mb": samples[0][1],
        "rss_settled_mb": settled[0],
        "rss_end_mb": samples[-1][1],
        "rss_max_mb": max(rss for _, rss in samples),
        "drift_mb": samples[-1][1] - settled[0],
        "samples": [(round(t, 1), round(rss, 1)) for t, rss in samples],
    }
    return big, long
