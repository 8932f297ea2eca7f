"""The commands' progress bar: one line on stderr of the work done so far (runs, candidates,
epochs), fed by a lever's ``progress(done, planned, label)`` callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from wattwise.cli._common import err_console
from wattwise.protocol import Progress as ProgressFn

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(what: str, *, quiet: bool) -> Iterator[ProgressFn | None]:
    """A bar on stderr labelled ``what`` (e.g. ``"measured runs"``) with done/planned and
    the latest label, shown from the first callback on and gone when the block ends; yields
    the callback, or None when ``quiet`` (--json): then no bar."""
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=err_console,
        transient=True,
    )
    tasks: list[Any] = []

    def told(done: int, planned: int, label: str) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task(what, total=planned, info=""))
        bar.update(tasks[0], completed=done, total=planned, info=label)

    try:
        yield told
    finally:
        if tasks:
            bar.stop()
