"""The benchmark's smoke mode runs end to end, so the bench cannot rot.

`python -m bench run --quick` generates a tiny dataset, loads it, starts the server and
its lean reference, drives both with wrk, checks memory and writes the report. The full
benchmark (1M/10M rows, minutes) is not part of the test run: see docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("getUser", "getDate", "getUserDate")


@pytest.mark.slow
def test_quick_bench_measures_server_and_lean_reference(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "run", "--quick", "--backends", "sqlite",
            "--sizes", "20k,40k", "--no-peers", "--import-rows", "0",
            "--docs", str(tmp_path / "docs"), "--json", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())

    systems = {(run["system"], run["kind"]) for run in results["runs"]}
    for kind in KINDS:
        assert ("voip24h-sqlite", kind) in systems
        assert ("lean-sqlite", kind) in systems
    assert ("bare-asgi", "fixed") in systems
    light = {
        (run["kind"], run["size"]) for run in results["runs"] if run["system"].endswith("-light")
    }
    assert light == {(kind, size) for kind in KINDS for size in (20_000, 40_000)}
    for run in results["runs"]:
        assert run["requests"] > 0 and run["rps"] > 0, run
        assert run["p99_ms"] >= run["p50_ms"] > 0, run
        assert run["errors"] == 0, run

    identical = [c for c in results["checks"] if c["check"] == "identical answers"]
    assert len(identical) == 6 and all(c["ok"] for c in identical), identical  # 3 kinds x 2 sizes
    big = next(c for c in results["checks"] if c["check"] == "big getDate answer")
    assert big["records"] == big["expected"] >= 5000
    names = [t["target"] for t in results["targets"]]
    assert any("req/s vs lean" in name for name in names)
    assert any("RSS growth" in name for name in names)
    assert sum("median latency at light load 40k vs 20k" in name for name in names) == 3

    report = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "| voip24h-sqlite | SQLite | 20k | getUserDate |" in report
    assert (tmp_path / "docs" / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
