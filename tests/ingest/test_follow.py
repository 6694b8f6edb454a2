"""``voip24h import --follow``: append, partial lines, rotation, truncation and restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.masterfiles import call, layout_columns, line
from voip24h.db.schema import call_records, cdr
from voip24h.ingest.follow import Follower
from voip24h.ingest.loader import Loader

COLUMNS = layout_columns(True, True, True)


def lines(*numbers: int) -> bytes:
    return b"".join(line(call(n), COLUMNS).encode() for n in numbers)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:  # as Asterisk does: open, append, close
        handle.write(data)


def stored(engine: Any) -> list[str]:
    """The uniqueids loaded so far, in file order."""
    with engine.connect() as conn:
        return list(conn.scalars(select(cdr.c.uniqueid).order_by(cdr.c.calldate)))


def uid(*numbers: int) -> list[str]:
    return [call(n)["uniqueid"] for n in numbers]


@pytest.fixture
def master(tmp_path: Path) -> Path:
    return tmp_path / "Master.csv"


@pytest.fixture
def follower(engine, settings, master):
    made: list[Follower] = []

    def _make() -> Follower:
        loader = Loader(engine, settings)
        loader.check_ready()
        made.append(Follower(loader, str(master), COLUMNS))
        return made[-1]

    yield _make
    for one in made:
        one.close()


def test_starts_at_the_first_line_then_reads_what_is_appended(engine, master, follower):
    master.write_bytes(lines(0, 1, 2))
    tail = follower()
    assert tail.poll() == 3
    append(master, lines(3, 4))
    assert tail.poll() == 2
    assert tail.poll() == 0
    assert stored(engine) == uid(0, 1, 2, 3, 4)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(call_records)) == 5


def test_waits_for_the_newline_of_a_half_written_line(engine, master, follower):
    third = lines(2)
    master.write_bytes(lines(0, 1) + third[:40])
    tail = follower()
    tail.poll()
    assert stored(engine) == uid(0, 1)
    assert tail.checkpoint().offset == len(lines(0, 1))
    append(master, third[40:-1])
    tail.poll()
    assert stored(engine) == uid(0, 1)
    append(master, b"\n")
    tail.poll()
    assert stored(engine) == uid(0, 1, 2)
    assert tail.rejected == 0


def test_waits_for_the_end_of_a_record_with_a_newline_inside_clid(engine, master, follower):
    record = line(call(0, clid='"Line one\nline two" <100>'), COLUMNS).encode()
    cut = record.index(b"\n") + 1
    master.write_bytes(record[:cut])
    tail = follower()
    tail.poll()
    assert stored(engine) == []
    append(master, record[cut:])
    tail.poll()
    assert stored(engine) == uid(0)


def test_rotation_by_rename_reads_the_old_file_to_its_end_then_the_new_one(
    engine, master, follower
):
    master.write_bytes(lines(0, 1))
    tail = follower()
    tail.poll()
    append(master, lines(2))  # written just before rotation, not yet read
    master.rename(master.with_name("Master.csv.1"))
    tail.poll()  # the path is gone for a moment: nothing lost, nothing broken
    master.write_bytes(lines(3, 4))
    tail.poll()
    append(master, lines(5))
    tail.poll()
    assert stored(engine) == uid(0, 1, 2, 3, 4, 5)
    assert tail.stats.duplicates == 0


def test_truncation_restarts_at_the_first_line(engine, master, follower):
    master.write_bytes(lines(0, 1, 2))
    tail = follower()
    tail.poll()
    with master.open("r+b") as handle:  # copytruncate
        handle.truncate(0)
    append(master, lines(3))
    tail.poll()
    assert stored(engine) == uid(0, 1, 2, 3)


def test_truncation_refilled_past_the_old_size_is_noticed(engine, master, follower):
    master.write_bytes(lines(0))
    tail = follower()
    tail.poll()
    with master.open("r+b") as handle:
        handle.truncate(0)
    append(master, lines(1, 2, 3))  # longer than before the truncation
    tail.poll()
    assert stored(engine) == uid(0, 1, 2, 3)


def test_restart_resumes_after_the_last_line_read(engine, master, follower):
    master.write_bytes(lines(0, 1, 2))
    first = follower()
    first.poll()
    first.close()
    append(master, lines(3, 4))
    second = follower()
    assert second.checkpoint().line == 4
    second.poll()
    assert (second.stats.inserted, second.stats.duplicates) == (2, 0)  # nothing read twice
    assert stored(engine) == uid(0, 1, 2, 3, 4)


def test_restart_after_rotation_while_stopped_finishes_the_old_file(engine, master, follower):
    master.write_bytes(lines(0, 1))
    first = follower()
    first.poll()
    first.close()
    append(master, lines(2))
    master.rename(master.with_name("Master.csv.1"))
    master.write_bytes(lines(3))
    second = follower()
    second.poll()
    assert stored(engine) == uid(0, 1, 2, 3)
    assert second.stats.duplicates == 0


def test_bad_lines_while_following_go_to_the_rejects(engine, master, follower, tmp_path):
    master.write_bytes(lines(0) + b'"broken","line"\n' + lines(1))
    tail = follower()
    tail.poll()
    assert stored(engine) == uid(0, 1)
    assert tail.rejected == 1


def voip24h(*args: Any) -> list[str]:
    return [sys.executable, "-m", "voip24h", *map(str, args)]


def test_follow_command_makes_new_calls_queryable_within_two_seconds(db_url, engine, master):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP24H_")}
    master.write_bytes(lines(0))
    command = voip24h("import", "--follow", master, "--db", db_url, "--loguniqueid")
    command += ["--loguserfield", "--newcdrcolumns", "--poll-interval", "0.2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30  # start-up (imports, migrations check) is not timed
        while stored(engine) != uid(0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored(engine) == uid(0)
        for n in (1, 2, 3):
            append(master, lines(n))
            written = time.monotonic()
            while len(stored(engine)) < n + 1 and time.monotonic() - written < 5:
                time.sleep(0.02)
            assert time.monotonic() - written < 2.0
        with engine.connect() as conn:
            users = set(conn.scalars(select(call_records.c.user_ext)))
        assert users == {"100", "101", "102", "103"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    append(master, lines(4))
    again = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(stored(engine)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=30)
    assert stored(engine) == uid(0, 1, 2, 3, 4)


def test_following_an_empty_file_needs_the_layout_named(db_url, master):
    from click.testing import CliRunner

    from voip24h.cli.importing import import_cmd

    master.write_bytes(b"")
    result = CliRunner().invoke(import_cmd, [str(master), "--follow", "--db", db_url])
    assert result.exit_code == 2
    assert "no complete line yet" in result.output and "--newcdrcolumns" in result.output
