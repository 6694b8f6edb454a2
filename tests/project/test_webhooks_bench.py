"""bench/webhooks_bench.py runs end to end on a tiny input, so it cannot rot: it imports
with events off and on, and delivers to its local receiver (no speed asserted here)."""

from __future__ import annotations

from bench import webhooks_bench


def test_the_webhooks_bench_reports_both_imports_and_delivery_rates(tmp_path):
    got = webhooks_bench.run(rows=1500, deliveries=100, repeat=1, workdir=tmp_path)
    assert got["imported"] == 1500 and got["events"] == got["records"] > 0
    assert got["import_events_off_rows_per_s"] > 0 and got["import_events_on_rows_per_s"] > 0
    assert got["import_on_vs_off"] > 0 and got["delivered"] == 100
    assert set(got["delivered_events_per_s"]) == {"in_flight_1", "in_flight_4", "in_flight_16"}
    assert all(rate > 0 for rate in got["delivered_events_per_s"].values())
