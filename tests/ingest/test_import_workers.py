"""The import's parsing worker (FileImporter's pipeline): faster, and nothing else changes.

The same files imported with and without the worker give the same rows, records,
rejects and summaries, on every backend; a killed import leaves no worker behind.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from tests.masterfiles import call, layout_columns, line, master_csv
from tests.support import contents, count, environment, voip24h
from voip24h.db.schema import call_records, cdr
from voip24h.domain.mapping import endpoint_name
from voip24h.ingest import files as ingest
from voip24h.ingest.files import FileImporter, plan_files
from voip24h.ingest.loader import Loader
from voip24h.ingest.rejects import RejectsWriter, read_rejects

COLUMNS = layout_columns(True, True, True)


def messy_file(path: Path, first: int, last: int) -> Path:
    """Calls first..last-1 with ring-group forks, repeated lines and bad lines among them."""
    out: list[bytes] = []
    for n in range(first, last):
        out.append(line(call(n), COLUMNS).encode())
        if n % 5 == 0:  # a fork of the same call, answered elsewhere
            fork = call(n, sequence=100_000 + n, dstchannel="PJSIP/205-0001", billsec=40)
            out.append(line(fork, COLUMNS).encode())
        if n % 11 == 0:
            out.append(out[-1])  # the same line twice
        if n % 13 == 0:
            out.append(line(call(n + 5000), COLUMNS).replace(",35,30,", ",35,x,").encode())
        if n % 17 == 0:
            out.append(b'"acme","100","200"\n')
        if n % 19 == 0:
            out.append(line(call(n + 6000), COLUMNS).encode().replace(b"Ext", b"E\xffxt"))
    path.write_bytes(b"".join(out))
    return path


def import_files(
    engine: Any, settings: Any, paths: list[Path], rejects: Path, *, pipeline: bool
) -> list[dict[str, Any]]:
    """Import each path in turn (batches of 7); the summaries, without the rejects' path."""
    loader = Loader(engine, settings)
    loader.check_ready()
    summaries = []
    with RejectsWriter(rejects) as writer:
        for path in paths:
            importer = FileImporter(
                loader, settings.zone, rejects=writer, batch_size=7, pipeline=pipeline
            )
            summary = importer.run(plan_files([str(path)], None, None)).as_dict()
            summary.pop("rejects_file")
            summaries.append(summary)
    return summaries


def test_the_parsing_worker_gives_the_same_rows_records_rejects_and_summaries(
    engine, settings, tmp_path
):
    first = messy_file(tmp_path / "a.csv", 0, 120)
    overlapping = messy_file(tmp_path / "b.csv", 90, 200)
    paths = [first, first, overlapping]  # a file twice, then one overlapping it
    results = {}
    for pipeline in (False, True):
        with engine.begin() as conn:
            conn.execute(delete(call_records))
            conn.execute(delete(cdr))
        rejects = tmp_path / f"rejects-{pipeline}.csv"
        summaries = import_files(engine, settings, paths, rejects, pipeline=pipeline)
        results[pipeline] = (summaries, read_rejects(rejects), contents(engine))

    summaries, rejects, (rows, records) = results[True]
    assert results[True] == results[False]
    assert [s["rejected"] for s in summaries] == [25, 25, 21]
    assert summaries[1]["imported"] == 0 and summaries[2]["duplicates"] > 0
    assert (
        len(rejects) == 71 and len(rows) == 200 + 40 and len(records) == 240
    )  # 200 callers, 40 ring-group legs to 205


def test_the_parsing_worker_ends_with_an_import_that_is_killed(db_url, engine, tmp_path):
    calls = [call(n) for n in range(6000)]
    path = tmp_path / "Master.csv"
    path.write_text(master_csv(calls, COLUMNS))
    assert path.stat().st_size >= ingest.PIPELINE_MIN_BYTES  # so the worker is used
    command = voip24h("import", path, "--db", db_url, "--batch-size", 200, "--quiet")

    process = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    children: list[int] = []
    while count(engine) < 400 and process.poll() is None and time.monotonic() < deadline:
        children = children or _children(process.pid)
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < count(engine) < len(calls), "the kill must land mid-way"
    assert children, "the import parsed in a worker process"

    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in children)

    again = subprocess.run(command, env=environment(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert count(engine) == len(calls)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _endpoint_name_by_regex(channel: str | None) -> str | None:
    """endpoint_name as first written (regexes only): the faster one must agree with it."""
    if not channel or "/" not in channel:
        return None
    tech, _, rest = channel.partition("/")
    if tech.lower() == "local":
        return rest.split("@", 1)[0] or None
    rest = re.sub(r"<[^>]*>$", "", rest.split(";", 1)[0])
    match = re.fullmatch(r"(.+)-[0-9a-fA-F]+", rest, re.ASCII)
    return (match.group(1) if match else rest) or None


def test_endpoint_name_agrees_with_its_regex_definition():
    pieces = ["PJSIP", "SIP", "Local", "/", "-", "--", "101", "trunk", "0000a1f", "xyz", "G"]
    pieces += [";1", ";", "<ZOMBIE>", "<x>", ">", "@ctx", "\n", "é", "", "DAHDI", "1-2"]
    rng = random.Random(3)
    channels: list[str | None] = [None, "", "/", "PJSIP/", "PJSIP/-", "PJSIP/a-\n"]
    channels += [
        "".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))) for _ in range(20000)
    ]
    for channel in channels:
        assert endpoint_name(channel) == _endpoint_name_by_regex(channel), channel
