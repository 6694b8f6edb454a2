"""Progress display for long work: a rich bar on a terminal, silence otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Update = Callable[..., None]


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def counter(
    label: str, *, quiet: bool = False, total: float | None = None, unit: str = "rows"
) -> Iterator[Update]:
    """Yield ``update(done, note="", total=None)``; draws only on a terminal and when not quiet."""
    if quiet or not interactive():
        yield lambda *args, **kwargs: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} {task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total, rate="", note="")

        def update(done: float, note: str = "", total: float | None = None) -> None:
            elapsed = progress.tasks[0].elapsed or 0
            rate = f"{done / elapsed:,.0f} {unit}/s" if elapsed > 0 else ""
            if total is not None:
                progress.update(task, total=total)
            progress.update(task, completed=done, note=note, rate=rate)

        yield update
