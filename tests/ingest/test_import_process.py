"""``voip24h import`` as a real process: killed mid-way and run again; progress on a terminal."""

from __future__ import annotations

import os
import pty
import re
import select as select_mod
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from tests.masterfiles import call, layout_columns, master_csv
from tests.support import contents, count, environment, voip24h
from voip24h.db import indexes, migrate
from voip24h.db.engine import make_engine

ROWS = 12_000


def test_import_killed_mid_way_and_run_again_equals_a_clean_import(db_url, engine, tmp_path):
    columns = layout_columns(True, True, True)
    calls = [call(n) for n in range(ROWS)]
    # Forks: several rows per uniqueid, so records span batches.
    calls += [call(n, sequence=n + ROWS, dstchannel="PJSIP/205-0001") for n in range(0, ROWS, 7)]
    path = tmp_path / "Master.csv"
    path.write_text(master_csv(calls, columns))
    command = voip24h("import", path, "--db", db_url, "--batch-size", 300, "--quiet")

    process = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while count(engine) < 900 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    at_kill = count(engine)
    assert process.returncode == -signal.SIGKILL
    assert 0 < at_kill < len(calls), "the kill must land mid-way"
    assert at_kill % 300 == 0  # only whole batches were committed
    assert indexes.is_deferred(engine)  # an initial load: the read indexes come at the end

    again = subprocess.run(command, env=environment(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"imported {len(calls) - at_kill:,} rows, skipped {at_kill:,}")

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    clean = make_engine(clean_url)
    migrate.upgrade(clean)
    done = subprocess.run(voip24h("import", path, "--db", clean_url), env=environment())
    assert done.returncode == 0
    assert count(engine) == len(calls)
    assert contents(engine) == contents(clean)
    assert not indexes.is_deferred(engine)
    assert index_names(engine) >= {str(ix.name) for ix in indexes.deferrable()}
    clean.dispose()


def index_names(engine: Any) -> set[str]:
    found = inspect(engine)
    return {str(ix["name"]) for table in ("cdr", "call_records") for ix in found.get_indexes(table)}


def test_progress_bar_on_an_80_column_terminal_shows_bytes_rows_rate_and_eta(tmp_path):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    path = tmp_path / "Master.csv"
    path.write_text(master_csv([call(n) for n in range(20_000)], layout_columns(True, True, True)))
    main, child = pty.openpty()
    env = environment() | {"COLUMNS": "80", "TERM": "xterm"}
    process = subprocess.Popen(
        voip24h("import", path, "--db", url, "--batch-size", 1000),
        env=env,
        stdout=subprocess.PIPE,
        stderr=child,
    )
    os.close(child)
    shown = b""
    while True:
        ready, _, _ = select_mod.select([main], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        shown += data
    out, _ = process.communicate(timeout=60)
    os.close(main)
    assert process.returncode == 0
    assert out.decode() == "imported 20,000 rows, skipped 0 duplicates, rejected 0\n"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode("utf-8", "replace"))
    drawn = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    assert drawn and all(len(line) <= 80 for line in drawn)  # one line on an 80-column terminal
    drawn = [line.rstrip() for line in drawn]  # a redraw pads with blanks what it shortened
    total = f"{path.stat().st_size / 1e6:.1f} MB"  # bytes read of the file's size
    shape = rf"^importing [━╺╸]+ [0-9.]+ MB/{total} [0-9,]+ rows [0-9,]+/s +eta \d:\d\d:\d\d$"
    assert any(re.match(shape, line) for line in drawn), drawn
    assert f"{total}/{total} 20,000 rows" in drawn[-1]  # then the indexes of an initial load


def test_quiet_on_a_terminal_draws_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    path = Path(tmp_path / "Master.csv")
    path.write_text(master_csv([call(n) for n in range(10)], layout_columns(True, True, True)))
    main, child = pty.openpty()
    process = subprocess.run(
        voip24h("import", path, "--db", url, "--quiet"),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=child,
        timeout=60,
    )
    os.close(child)
    try:
        leftover = os.read(main, 65536)
    except OSError:  # EIO: the terminal was closed without anything written to it
        leftover = b""
    os.close(main)
    assert process.returncode == 0
    assert leftover == b""
