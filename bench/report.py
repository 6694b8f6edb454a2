"""Targets (PASS/FAIL), the markdown report and its chart, from one run's results."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.dataset import label
from bench.workload import KINDS, LIGHT

BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}


def _run(runs: list[dict[str, Any]], system: str, kind: str, size: int) -> dict[str, Any] | None:
    for row in runs:
        if row["system"] == system and row["kind"] == kind and row["size"] == size:
            return row
    return None


def _sizes(runs: list[dict[str, Any]], system: str) -> list[int]:
    return sorted({row["size"] for row in runs if row["system"] == system})


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured figure, bound and verdict."""
    runs, checks = results["runs"], results["checks"]
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, bound: str, ok: bool | None, detail: str = "") -> None:
        out.append({"target": name, "value": value, "bound": bound, "ok": ok, "detail": detail})

    for backend in ("sqlite", "postgresql", "mysql"):
        ours, lean = f"voip24h-{backend}", f"lean-{backend}"
        for size in _sizes(runs, ours):
            for kind in KINDS:
                a, b = _run(runs, ours, kind, size), _run(runs, lean, kind, size)
                if not a or not b:
                    continue
                where = f"{BACKEND_NAMES[backend]} {label(size)} {kind}"
                ratio = a["rps"] / b["rps"] if b["rps"] else 0.0
                detail = f"{a['rps']:.0f} vs {b['rps']:.0f} req/s"
                add(f"{where}: req/s vs lean", ratio, ">= 0.9x", ratio >= 0.9, detail)
                p99 = a["p99_ms"] / b["p99_ms"] if b["p99_ms"] else 0.0
                detail = f"{a['p99_ms']:.1f} vs {b['p99_ms']:.1f} ms"
                if backend == "sqlite":
                    add(f"{where}: p99 vs lean", p99, "<= 1.5x", p99 <= 1.5, detail)
                errors = a["errors"] + b["errors"]
                if errors:
                    add(f"{where}: errors", errors, "0", False, "wrk counted failed requests")
    for row in runs:  # the server without its audit trail: shown, not a target
        if row["system"].endswith("-noaudit"):
            lean = _run(runs, f"lean-{row['backend']}", row["kind"], row["size"])
            if lean and lean["rps"]:
                where = f"{BACKEND_NAMES[row['backend']]} {label(row['size'])} {row['kind']}"
                detail = (
                    f"audit off: {row['rps']:.0f} vs {lean['rps']:.0f} req/s, p99 "
                    f"{row['p99_ms']:.1f} vs {lean['p99_ms']:.1f} ms"
                )
                add(
                    f"{where}: req/s vs lean, audit off",
                    row["rps"] / lean["rps"],
                    "info",
                    None,
                    detail,
                )
    peer_sets = (
        ("datasette", "voip24h-sqlite", 10.0),
        ("asterisk-cdr-api", "voip24h-mysql", 1000.0),
    )
    for peer, ours, bound in peer_sets:
        for row in (r for r in runs if r["system"] == peer):
            # The server measured side by side with the peer, where the run did that.
            mine = _run(runs, f"{ours}-vs-{peer}", row["kind"], row["size"]) or _run(
                runs, ours, row["kind"], row["size"]
            )
            if mine is None:
                continue
            ratio = mine["rps"] / row["rps"] if row["rps"] else float("inf")
            detail = f"{mine['rps']:.0f} vs {row['rps']:.2f} req/s"
            ok = ratio >= bound
            if row["errors"]:  # a peer that failed was not measured: no pass
                detail += f" ({row['errors']:.0f} of the peer's requests failed)"
                ok = False
            add(
                f"{label(row['size'])} {row['kind']}: vs {peer}",
                ratio,
                f">= {bound:g}x",
                ok,
                detail,
            )
    for backend in ("sqlite", "postgresql", "mysql"):
        # Latency at light load where the run has it (at saturation a median is mostly
        # queueing behind the other connections, i.e. the throughput upside down).
        ours = f"voip24h-{backend}"
        if _sizes(runs, ours + LIGHT):
            ours += LIGHT
        sizes = _sizes(runs, ours)
        if len(sizes) < 2:
            continue
        small, large = sizes[0], sizes[-1]
        for kind in KINDS:
            a, b = _run(runs, ours, kind, small), _run(runs, ours, kind, large)
            if a and b:
                growth = b["p50_ms"] / a["p50_ms"] if a["p50_ms"] else 0.0
                detail = f"p50 {a['p50_ms']:.2f} ms at {label(small)}, {b['p50_ms']:.2f} ms at {label(large)}"
                load = " at light load" if ours.endswith(LIGHT) else ""
                add(
                    f"{BACKEND_NAMES[backend]} {kind}: median latency{load} "
                    f"{label(large)} vs {label(small)}",
                    growth,
                    "<= 1.3x",
                    growth <= 1.3,
                    detail,
                )
    for check in checks:
        if check["check"] == "identical answers" and not check["ok"]:
            add(
                f"{BACKEND_NAMES[check['backend']]} {check['kind']}: same answer as lean",
                0,
                "identical",
                False,
            )
        if check["check"] == "big getDate answer":
            enough = check["records"] >= check["target_records"]
            add(
                f"getDate answer of {check['records']:,} records: server RSS growth (MB)",
                check["growth_mb"],
                "< 50 MB",
                check["growth_mb"] < 50 and enough,
                f"{check['bytes'] / 1e6:.1f} MB answer in {check['seconds']:.1f} s; RSS "
                f"{check['rss_before_mb']:.0f} -> peak {check['rss_peak_mb']:.0f} MB",
            )
        if check["check"] == "RSS over a long run":
            add(
                f"RSS flat over a {check['seconds']:.0f} s run (drift MB)",
                check["drift_mb"],
                "< 10 MB",
                check["drift_mb"] < 10 and not check["errors"],
                f"{check['rss_settled_mb']:.1f} -> {check['rss_end_mb']:.1f} MB at {check['rps']:.0f} req/s",
            )
        if check["check"] == "import rate":
            ratio = next(
                (
                    v
                    for k, v in check.items()
                    if ("ratio" in k or "_vs_" in k) and isinstance(v, int | float)
                ),
                None,
            )
            text = ", ".join(f"{k}={v}" for k, v in check.items() if k != "check")
            rows = check.get("rows")
            add(
                "import rate vs raw bulk insert (SQLite"
                + (f", {label(rows)} rows)" if isinstance(rows, int) else ")"),
                ratio,
                ">= 0.5x",
                None if ratio is None else ratio >= 0.5,
                text,
            )
    return out


def verdict_lines(rows: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        mark = {True: "PASS", False: "FAIL", None: "INFO"}[row["ok"]]
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        lines.append(f"{mark}  {row['target']}: {value} ({row['bound']}) {row['detail']}")
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 per system and request type; latency vs table size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    smallest = max(results["options"]["sizes"])  # the size every system was measured at
    systems = [s for s in dict.fromkeys(r["system"] for r in runs) if s != "bare-asgi"]
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    width = 0.8 / max(1, len(systems))
    for panel, metric, title in ((0, "rps", "req/s (log)"), (1, "p99_ms", "p99 latency, ms (log)")):
        ax = axes[panel]
        for i, system in enumerate(systems):
            values = []
            for kind in KINDS:
                row = _run(runs, system, kind, smallest)
                if row is None:
                    size = next(
                        (r["size"] for r in runs if r["system"] == system and r["kind"] == kind),
                        None,
                    )
                    row = _run(runs, system, kind, size) if size else None
                values.append(row[metric] if row else 0)
            color = plt.get_cmap("tab20")(i % 20)
            ax.bar(
                [k + i * width for k in range(len(KINDS))], values, width, label=system, color=color
            )
        if metric == "rps":
            bare = next((r for r in runs if r["system"] == "bare-asgi"), None)
            if bare:
                ax.axhline(bare["rps"], color="black", linestyle="--", label="bare ASGI ceiling")
        ax.set_yscale("log")
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(KINDS))], KINDS)
        servers = ", ".join(label(size) for size in results["options"].get("server_sizes", []))
        where = f"SQLite {label(smallest)} rows" + (f", servers {servers}" if servers else "")
        ax.set_title(f"{title}, {where}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=6, ncol=3, loc="upper right", framealpha=0.9)
    ax = axes[2]
    for system in ("voip24h-sqlite" + LIGHT, "voip24h-sqlite", "lean-sqlite"):
        for kind in KINDS:
            points = sorted(
                (r["size"], r["p50_ms"])
                for r in runs
                if r["system"] == system and r["kind"] == kind
            )
            if len(points) > 1:
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="o",
                    label=f"{system} {kind}",
                )
    ax.set_xscale("log")
    ax.set_xlabel("CDR rows")
    ax.set_ylabel("median latency, ms")
    ax.set_title("median latency vs table size")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(
    results: dict[str, Any], verdicts: list[dict[str, Any]], chart_name: str, command: str
) -> str:
    m = results["machine"]
    runs = results["runs"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by the bench (`bench/`): do not edit by hand. Every figure below comes from",
        "one run of:",
        "",
        f"```sh\n{command}\n```",
        "",
        f"Run {results['started']}. Absolute numbers drift with the machine and its load (it is",
        "shared): the ratios, measured side by side in the same run, are what the targets use.",
        "",
        "## How it is measured",
        "",
        "- **Data**: a hosted PBX with one year of calls, many tenants (accountcodes) of 20",
        "  extensions; the number of tenants grows with the row count, so one extension's (or",
        "  tenant's) answer is the same size at every table size. Generated deterministically",
        "  (`bench/dataset.py`) as an Asterisk Master.csv and loaded into SQLite by `voip24h",
        "  import` itself (`bench/load.py`); PostgreSQL and MariaDB get the same tables copied",
        "  from that file.",
        "- **Load**: `wrk` (2 threads, "
        + str(results["options"]["connections"])
        + " connections) on the same machine: "
        + f"{results['options']['seconds']:g} s per system and request type after a warm-up,",
        "  taken in 2 s slices in turn with the lean reference (A B C A B C ...) so that the",
        "  shared machine's changing load hits both alike; the mix rotates",
        "  over 2,000 requests per type: tenant partners (64), their extensions, getUserDate windows",
        "  of 1..3 months (~87 records), getDate windows of 1..7 days of a tenant, getUser all time.",
        "- **Latency vs table size**: the server at light load (`-light`: 1 connection), on",
        "  every SQLite size at once, the sizes taken in turn in 2 s slices (half the run time",
        "  per type and size; PostgreSQL and MariaDB: a quarter, alone); the growth targets",
        "  compare these medians, since at saturation a median is mostly time queued behind",
        "  the other 31 connections, the throughput upside down.",
        f"- **Systems**: the server (`voip24h serve --workers {results['options']['workers']}`, rate",
        "  limits off, everything else default) beside a lean reference per backend",
        "  (`bench/lean.py`: Starlette + sqlite3/asyncpg/asyncmy + orjson, the same SQL and JSON,",
        "  no auth, each driver used the plain way), datasette on the same SQLite file (same SQL",
        "  via `?sql=`), asterisk-cdr-api",
        "  (`GET /calls?src=&date_from=&date_to=`, its nearest equivalent of getUserDate) on the",
        "  same rows in MariaDB's FreePBX-style `cdr` table, and a bare ASGI app returning a fixed",
        "  4.5 KB body (the machine's ceiling). Same uvicorn worker count for all but the peers,",
        "  which run as they ship.",
        "",
        "What the server does that the lean references do not, each found with a profiler",
        "and kept for what it measured (the commit messages give the figures):",
        "",
        "- SQLite: a seed answer is rendered by SQLite itself (json1: one row holding the",
        "  JSON array, `records.select_records_json`) instead of a Python tuple and six strings",
        "  per record, each row costing the sqlite3 module a release and retake of the GIL.",
        "- MariaDB: reads run as server-side prepared statements (asyncmy's binary protocol):",
        "  no SQL text to escape or parse per request; and a one-user read names its index",
        "  (`FORCE INDEX`), sparing the optimizer's estimates on every candidate index.",
        "- PostgreSQL: asyncpg prepares statements for both; the server skips the pool's",
        "  connection reset, which its read-only requests never need.",
        "- Every backend: the partner endpoint's POSTs are served ahead of Starlette's",
        "  middleware stack and router (`app.PartnerServer`), with the server's own ops",
        "  middleware, error envelopes and responses; the lean references use a Starlette route.",
        "",
        "`voip24h-<backend>-noaudit` is the same server with `VOIP24H_AUDIT_ENABLED=0`, measured",
        "in the same run: the difference to `voip24h-<backend>` is what the audit trail (a row",
        "per request, written in batches on the event loop; on SQLite into `FILE-audit.db`",
        "beside the database) costs. It is",
        "shown for information; the targets use the default configuration.",
        "",
        "## Targets",
        "",
        "```",
        *verdict_lines(verdicts),
        "```",
        "",
        "## Throughput and latency",
        "",
        f"![throughput, p99 and latency vs size]({chart_name})",
        "",
        "| system | backend | rows | request | req/s | p50 ms | p99 ms | errors | vs lean req/s |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in runs:
        lean = _run(runs, f"lean-{row['backend']}", row["kind"], row["size"])
        saturated = not row["system"].endswith(LIGHT)
        ratio = f"{row['rps'] / lean['rps']:.2f}x" if saturated and lean and lean["rps"] else ""
        lines.append(
            f"| {row['system']} | {BACKEND_NAMES.get(row['backend'], row['backend'])} | "
            f"{label(row['size']) if row['size'] else '-'} | {row['kind']} | {row['rps']:,.1f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']:.0f} | {ratio} |"
        )
    lines += ["", "## Memory and loading", ""]
    for check in results["checks"]:
        if check["check"] in ("big getDate answer", "RSS over a long run", "import rate"):
            shown = {k: v for k, v in check.items() if k not in ("samples", "check")}
            lines.append(
                f"- **{check['check']}**: "
                + ", ".join(
                    f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
                )
            )
    for load in results["loads"]:
        lines.append(
            f"- loaded {label(load['size'])} into {BACKEND_NAMES[load['backend']]} "
            f"in {load['seconds']:.0f} s"
            + (" (an earlier run; the dataset is cached)" if load.get("cached") else "")
            + (
                f" ({load['rows']:,} rows, {load['records']:,} records)"
                if "rows" in load
                else " (copy)"
            )
            + (
                f" by `voip24h import`: {load['rows_per_s']:,} rows/s, peak RSS "
                f"{load['peak_rss_main_mib']} MiB (importing process), "
                f"{load['peak_rss_worker_mib']} MiB (parsing worker)"
                if "rows_per_s" in load
                else ""
            )
        )
    for note in results["notes"]:
        lines.append(f"- note: {note}")
    lines += ["", "## Machine", "", "| | |", "| --- | --- |"]
    for key in (
        "cpu",
        "cores",
        "memory_gb",
        "kernel",
        "load_average_at_start",
        "python",
        "sqlite",
        "postgresql",
        "mariadb",
        "wrk",
    ):
        lines.append(f"| {key.replace('_', ' ')} | {m.get(key, '-')} |")
    lines.append("| packages | " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + " |")
    lines.append(
        "| peers (bench/.venv-peers) | "
        + ", ".join(f"{k} {v}" for k, v in m["peers"].items())
        + " |"
    )
    lines.append("")
    return "\n".join(lines)


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' results as one: a later run's figure replaces an earlier one's for
    the same system, size and request type (pairs stay measured side by side)."""
    runs: dict[tuple[Any, ...], dict[str, Any]] = {}
    checks: dict[tuple[Any, ...], dict[str, Any]] = {}
    merged: dict[str, Any] = {"loads": [], "notes": [], "commands": [], "started": []}
    for part in parts:
        for row in part["runs"]:
            runs[(row["system"], row["size"], row["kind"])] = row
        for check in part["checks"]:
            key = (check["check"], check.get("backend"), check.get("size"), check.get("kind"))
            checks[key] = check
        merged["loads"] += part["loads"]
        merged["notes"] += [n for n in part["notes"] if n not in merged["notes"]]
        merged["commands"] += part.get("commands", [])
        merged["started"].append(part["started"])
        merged["machine"] = part["machine"]
        options = dict(part["options"])
        if "options" in merged:
            options["sizes"] = sorted(set(merged["options"]["sizes"]) | set(options["sizes"]))
        merged["options"] = options
    merged["runs"], merged["checks"] = list(runs.values()), list(checks.values())
    merged["started"] = ", ".join(merged["started"])
    return merged


def write(results: dict[str, Any], docs: Path, command: str) -> list[dict[str, Any]]:
    """docs/benchmarks.md and docs/benchmarks.png; returns the targets."""
    docs.mkdir(parents=True, exist_ok=True)
    verdicts = targets(results)
    chart(results, docs / "benchmarks.png")
    (docs / "benchmarks.md").write_text(markdown(results, verdicts, "benchmarks.png", command))
    return verdicts
