"""Progress of `voip24h db reindex` and `voip24h import`: a bar that fits an 80-column
terminal, plain lines with --progress off a terminal, nothing in pipes or with --quiet."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from tests.builders import cdr_row
from tests.masterfiles import call, layout_columns, master_csv
from voip24h.cli.main import cli
from voip24h.ingest import progress

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ETA = r"eta \d:\d\d:\d\d"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr seen as an 80-column terminal: what the bar draws lands in the returned buffer."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    monkeypatch.setattr(progress, "interactive", lambda: True)
    monkeypatch.setattr(progress, "terminal_console", lambda: console)
    return screen


def drawn(screen: io.StringIO) -> list[str]:
    """The bar's lines as they showed, control sequences removed."""
    text = CSI.sub("", screen.getvalue())
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def master_file(tmp_path: Path, calls: int) -> Path:
    path = tmp_path / "Master.csv"
    path.write_text(master_csv([call(n) for n in range(calls)], layout_columns(True, True, True)))
    return path


def test_reindex_on_a_terminal_draws_a_bar_with_the_total_and_the_time_left(
    db_url, load, terminal
):
    load(*(cdr_row(uniqueid=f"1532857052.{n}") for n in range(40)))
    result = run("db", "reindex", "--db", db_url)
    assert result.exit_code == 0
    assert result.output == "reindexed: 40 call records\n"
    lines = drawn(terminal)
    assert lines and all(len(line) <= 80 for line in lines)
    assert re.match(rf"^reindexing ━+ 40/40 rows [0-9,]+ rows/s +{ETA}$", lines[-1]), lines


@pytest.mark.parametrize("flag", ["--quiet", "--no-progress"])
def test_reindex_quiet_or_no_progress_draws_nothing_on_a_terminal(db_url, load, terminal, flag):
    load(cdr_row())
    result = run("db", "reindex", "--db", db_url, flag)
    assert result.output == "reindexed: 1 call records\n"
    assert terminal.getvalue() == ""


def test_reindex_off_a_terminal_prints_only_its_summary(db_url, load):
    load(cdr_row())
    result = run("db", "reindex", "--db", db_url)
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("reindexed: 1 call records\n", "")


def test_reindex_with_progress_off_a_terminal_prints_plain_lines(db_url, load):
    load(cdr_row(), cdr_row(uniqueid="2.2"))
    result = run("db", "reindex", "--db", db_url, "--progress")
    assert result.stdout == "reindexed: 2 call records\n"
    assert re.fullmatch(rf"reindexing: 2/2 rows, [0-9,]+ rows/s, {ETA}\n", result.stderr)


def test_quiet_and_progress_together_are_a_usage_error(db_url):
    result = run("db", "reindex", "--db", db_url, "--quiet", "--progress")
    assert result.exit_code == 2
    assert "--quiet and --progress contradict each other" in result.output


def test_import_on_an_80_column_terminal_shows_bytes_rows_rate_and_eta(db_url, tmp_path, terminal):
    path = master_file(tmp_path, 300)
    result = run("import", str(path), "--db", db_url, "--batch-size", "50", "--keep-indexes")
    assert result.exit_code == 0
    assert result.output == "imported 300 rows, skipped 0 duplicates, rejected 0\n"
    lines = drawn(terminal)
    assert lines and all(len(line) <= 80 for line in lines)
    size = f"{path.stat().st_size / 1e3:.1f} kB"
    shape = rf"^importing ━+ {size}/{size} 300 rows [0-9,]+/s +{ETA}$"
    assert re.match(shape, lines[-1]), lines


@pytest.mark.parametrize("flags", [["--quiet"], ["--no-progress"], ["--json"]])
def test_import_draws_nothing_when_told_or_when_printing_json(db_url, tmp_path, terminal, flags):
    result = run("import", str(master_file(tmp_path, 3)), "--db", db_url, *flags)
    assert result.exit_code == 0
    assert terminal.getvalue() == ""


def test_import_off_a_terminal_has_no_control_characters(db_url, tmp_path):
    path = master_file(tmp_path, 3)
    quiet = run("import", str(path), "--db", db_url)
    assert quiet.stderr == ""
    again = run("import", str(path), "--db", db_url, "--progress")
    assert again.stdout == "imported 0 rows, skipped 3 duplicates, rejected 0\n"
    size = f"{path.stat().st_size} B"
    assert re.fullmatch(rf"importing: {size}/{size}, 3 rows [0-9,]+/s, {ETA}\n", again.stderr)
