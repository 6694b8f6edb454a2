"""bench/import_bench.py in its smoke size: the figures the main bench includes are there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "import_bench.py"


def test_import_bench_smoke_run_returns_its_figures(tmp_path):
    spec = importlib.util.spec_from_file_location("import_bench", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    figures = bench.run(rows=3000, workdir=tmp_path, batch_size=500)

    assert figures["imported"] == 3000 and figures["rejected"] == 0
    assert figures["records"] > 3000  # internal calls give two records
    for name in ("import_rows_per_s", "raw_insert_rows_per_s", "import_peak_rss_mib"):
        assert figures[name] > 0
    assert 0 < figures["import_vs_raw"] < 5
    lines = (tmp_path / "Master-3000.csv").read_text().splitlines()
    assert len(lines) == 3000 and all(line.count(",") >= 20 for line in lines)
