"""``python -m bench run [--sizes 1M,10M] [--quick]``: the whole benchmark, one command.

See docs/benchmarks.md (which this regenerates) for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from bench.dataset import parse_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate data, run every system, write docs/benchmarks.md")
    run.add_argument("--sizes", default="1M,10M", help="SQLite table sizes (rows) [1M,10M]")
    run.add_argument(
        "--server-sizes", default=None,
        help="PostgreSQL/MariaDB table sizes [the smallest of --sizes]",
    )  # fmt: skip
    run.add_argument("--seconds", type=float, default=10.0, help="wrk seconds per run [10]")
    run.add_argument("--connections", type=int, default=32, help="wrk connections [32]")
    run.add_argument("--workers", type=int, default=2, help="uvicorn workers per server [2]")
    run.add_argument("--backends", default="sqlite,postgresql,mysql")
    run.add_argument("--no-peers", action="store_true", help="skip datasette/asterisk-cdr-api")
    run.add_argument("--soak-seconds", type=float, default=60.0, help="RSS run length [60]")
    run.add_argument("--big-answer", type=int, default=200_000, help="records of the big getDate")
    run.add_argument(
        "--import-rows",
        type=int,
        default=1_000_000,
        help="rows for bench/import_bench.py [1000000]: the size the import target is held at",
    )
    run.add_argument("--no-memory", action="store_true", help="skip the memory checks")
    run.add_argument("--no-speed", action="store_true", help="skip the throughput runs")
    run.add_argument("--quick", action="store_true", help="smoke mode: tiny data, seconds")
    run.add_argument("--docs", default="docs", help="where benchmarks.md/.png go ['' = nowhere]")
    run.add_argument("--json", default=None, help="also write the raw results to this file")
    merge = sub.add_parser(
        "report", help="rewrite docs/benchmarks.md from saved --json results (later ones win)"
    )
    merge.add_argument("results", nargs="+", help="results files written with --json")
    merge.add_argument("--docs", default="docs")
    merge.add_argument("--cite", action="append", default=[], help="command(s) to cite")
    args = parser.parse_args(argv)
    if args.command == "report":
        return _report(args.results, Path(args.docs), args.cite or None)

    # A plain `kill` still stops the servers the bench started (their finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from bench import report
    from bench.run import Options
    from bench.run import run as run_bench

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    server_sizes = [parse_size(s) for s in (args.server_sizes or "").split(",") if s]
    opts = Options(
        sizes=sizes,
        server_sizes=server_sizes or [min(sizes)],
        seconds=args.seconds,
        connections=args.connections,
        workers=args.workers,
        backends=tuple(b for b in args.backends.split(",") if b),
        peers=not args.no_peers,
        soak_seconds=args.soak_seconds,
        big_answer=args.big_answer,
        quick=args.quick,
        import_rows=args.import_rows,
        memory=not args.no_memory,
        speed=not args.no_speed,
        docs=Path(args.docs) if args.docs else None,
    )
    if args.quick:
        opts.sizes = (
            [parse_size(s) for s in args.sizes.split(",")] if args.sizes != "1M,10M" else [20_000]
        )
        opts.server_sizes = server_sizes or [min(opts.sizes)]
        opts.seconds = args.seconds if args.seconds != 10.0 else 1.0
        opts.soak_seconds = args.soak_seconds if args.soak_seconds != 60.0 else 2.0
        opts.big_answer = args.big_answer if args.big_answer != 200_000 else 5_000
        opts.connections = args.connections if args.connections != 32 else 8
        opts.workers = args.workers if args.workers != 2 else 1
        opts.import_rows = args.import_rows if args.import_rows != 1_000_000 else 2_000
    results = run_bench(opts)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    verdicts = report.targets(asdict(results))
    if args.json:
        Path(args.json).write_text(
            json.dumps({**asdict(results), "targets": verdicts}, default=str)
        )
    if opts.docs is not None:
        report.write(asdict(results), opts.docs, command)
        print(f"wrote {opts.docs / 'benchmarks.md'} and {opts.docs / 'benchmarks.png'}")
    print("\n".join(report.verdict_lines(verdicts)))
    failed = sum(1 for v in verdicts if v["ok"] is False)
    passed = sum(1 for v in verdicts if v["ok"] is True)
    print(f"targets: {passed} passed, {failed} failed")
    return 0


def _report(files: list[str], docs: Path, commands: list[str] | None) -> int:
    from bench import report

    merged = report.merge([json.loads(Path(f).read_text()) for f in files])
    cited = "\n".join(commands or merged.get("commands", []))
    verdicts = report.write(merged, docs, cited)
    print("\n".join(report.verdict_lines(verdicts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
