"""Progress display for long work: a rich bar on a terminal, plain lines or silence otherwise.

Three modes, chosen by ``mode(progress, quiet)`` from a command's flags:

* ``"bar"``: a one-line rich bar on stderr, redrawn in place and erased at the end; it
  fits the terminal's width (80 columns included);
* ``"lines"``: ``--progress`` off a terminal: a plain line on stderr every
  ``LINE_INTERVAL`` seconds and one at the end, no control characters (logs, journald);
* ``"off"``: nothing (``--quiet``, ``--no-progress``, or stderr not a terminal).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console

Update = Callable[..., None]
Mode = Literal["bar", "lines", "off"]

LINE_INTERVAL = 10.0  # seconds between two plain progress lines


def interactive() -> bool:
    """Whether stderr is a terminal (where a bar may be drawn)."""
    return sys.stderr.isatty()


def terminal_console() -> Console:
    """The console a bar is drawn on: stderr (tests replace it by a recording one)."""
    from rich.console import Console

    return Console(stderr=True)


def mode(progress: bool | None = None, quiet: bool = False) -> Mode:
    """The display ``--progress/--no-progress`` (None: not given) and ``--quiet`` ask for."""
    if quiet or progress is False:
        return "off"
    if interactive():
        return "bar"
    return "lines" if progress else "off"


def amount(value: float, unit: str) -> str:
    """``12,345 rows``, or for bytes ``3.4 MB`` (decimal units, as ``ls -h --si``)."""
    if unit != "bytes":
        return f"{value:,.0f} {unit}"
    for size, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= size:
            return f"{value / size:.1f} {name}"
    return f"{value:.0f} B"


def clock(seconds: float | None) -> str:
    """``0:01:23``; ``-:--:--`` while unknown."""
    if seconds is None:
        return "-:--:--"
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Meter:
    """What a progress display says: done of total, rows, rows per second, time left."""

    def __init__(self, label: str, total: float | None, unit: str):
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0.0
        self.rows: int | None = None
        self.note = ""
        self.started = time.monotonic()

    def update(
        self,
        done: float,
        rows: int | None = None,
        note: str | None = None,
        total: float | None = None,
        label: str | None = None,
    ) -> None:
        self.done = done
        if rows is not None:
            self.rows = rows
        if note is not None:
            self.note = note
        if total is not None:
            self.total = total
        if label is not None:
            self.label = label

    def amount(self) -> str:
        if self.total is None:
            return amount(self.done, self.unit)
        if self.unit == "bytes":
            return f"{amount(self.done, 'bytes')}/{amount(self.total, 'bytes')}"
        return f"{self.done:,.0f}/{amount(self.total, self.unit)}"

    def rate(self) -> str:
        elapsed = time.monotonic() - self.started
        counted = self.done if self.rows is None else self.rows
        if elapsed <= 0 or not counted:
            return ""
        if self.rows is None:
            return f"{counted / elapsed:,.0f} {self.unit}/s"
        return f"{self.rows:,} rows {counted / elapsed:,.0f}/s"

    def remaining(self) -> float | None:
        """Seconds left at the average speed so far; None while it cannot be told."""
        if self.total is None:
            return None
        if self.done >= self.total:
            return 0.0
        elapsed = time.monotonic() - self.started
        if self.done <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / self.done

    def line(self) -> str:
        """One plain line: ``importing: 1.2 MB/3.4 MB, 12,345 rows 6,789/s, eta 0:00:03``."""
        parts = [self.amount()]
        if self.rate():
            parts.append(self.rate())
        if self.note:
            parts.append(self.note)
        if self.total is not None:
            parts.append(f"eta {clock(self.remaining())}")
        return f"{self.label}: {', '.join(parts)}"


@contextmanager
def tracker(
    label: str,
    *,
    display: Mode,
    total: float | None = None,
    unit: str = "rows",
    console: Console | None = None,
) -> Iterator[Update]:
    """Yield ``update(done, rows=None, note=None, total=None, label=None)``.

    ``done`` counts ``unit`` (``"bytes"`` shows sizes); ``rows`` is a row count shown
    beside it; ``label`` replaces the label from then on (e.g. ``building index ...``).
    """
    if display == "off":
        yield lambda *args, **kwargs: None
        return
    meter = _Meter(label, total, unit)
    if display == "lines":
        yield from _lines(meter)
        return
    yield from _bar(meter, console or terminal_console())


def _lines(meter: _Meter) -> Iterator[Update]:
    said, label, at = "", meter.label, time.monotonic()

    def update(*args: object, **kwargs: object) -> None:
        nonlocal said, label, at
        meter.update(*args, **kwargs)  # type: ignore[arg-type]
        now = time.monotonic()
        # A new stage (building index ...) is said at once, the same one every 10 s.
        if now - at >= LINE_INTERVAL or meter.label != label:
            said, label, at = _say(meter.line()), meter.label, now

    yield update
    if meter.line() != said:
        _say(meter.line())


def _say(line: str) -> str:
    print(line, file=sys.stderr, flush=True)
    return line


def _bar(meter: _Meter, console: Console) -> Iterator[Update]:
    from rich.progress import BarColumn, Progress, ProgressColumn, Task
    from rich.table import Column
    from rich.text import Text

    class Words(ProgressColumn):
        """Text from the meter, cut with an ellipsis rather than wrapped onto a second line."""

        def __init__(self, say: Callable[[], str], style: str = "", widest: int | None = None):
            self.say, self.style = say, style
            super().__init__(Column(no_wrap=True, overflow="ellipsis", max_width=widest))

        def render(self, task: Task) -> Text:
            return Text(self.say(), style=self.style, no_wrap=True, overflow="ellipsis")

    columns: list[ProgressColumn] = [
        Words(lambda: meter.label, "bold", widest=24),
        BarColumn(bar_width=None, table_column=Column(min_width=10, ratio=1)),
        Words(meter.amount),
        Words(meter.rate),
        Words(lambda: meter.note),
    ]
    if meter.total is not None:
        columns.append(Words(lambda: f"eta {clock(meter.remaining())}"))
    with Progress(*columns, console=console, transient=True, expand=True) as progress:
        task = progress.add_task(meter.label, total=meter.total)

        def update(*args: object, **kwargs: object) -> None:
            meter.update(*args, **kwargs)  # type: ignore[arg-type]
            progress.update(task, completed=meter.done, total=meter.total)

        yield update
