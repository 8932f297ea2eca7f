"""``wattwise demo``: the main job on bundled data, every figure measured in this run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from wattwise._units import format_energy
from wattwise.cli._common import console, err_console, fail, need

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the report and the JSON.")] = Path(
        "wattwise-report"
    ),
    quick: Annotated[bool, typer.Option(help="A shorter run (under 2 minutes on 2 cores).")] = (
        False
    ),
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
) -> None:
    """Train, compare and schedule on bundled data, showing what each lever saves."""
    need("wattwise demo", "demo")  # before anything is written or trained
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror}")
    from wattwise.demo import run_demo, savings_table
    from wattwise.demo._run import LEVER_STEPS

    console.print(
        f"[bold]wattwise demo[/]{' (quick)' if quick else ''}: architectures, stopping, "
        "transfer learning, search, carbon-aware timing, quantization and batching on bundled "
        "data (MNIST-1D, generated here, and digits), "
        "each measured against its baseline in this run"
    )
    with Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,  # progress is not data: stderr, silenced by --quiet
    ) as progress:
        task = progress.add_task("starting", total=LEVER_STEPS)

        def step(message: str) -> None:
            progress.update(task, description=message, advance=1)

        result = run_demo(out, quick=quick, store=store, step=step)
        progress.update(task, description="done", completed=LEVER_STEPS)
    console.print(f"[bold]{escape(result.headline.text)}[/]")
    console.print(escape(result.headline.definition), highlight=False)
    table = Table(
        title="What each lever saved (baselines measured in this run)", header_style="bold"
    )
    summary = savings_table(result.levers)
    for col in summary.columns[:-1]:  # the source is said once, below
        table.add_column(col)
    for row in summary.rows:
        table.add_row(*(escape(cell) for cell in row[:-1]))
    console.print(table)
    console.print(
        f"Energy: {result.source}; the carbon row times the same daily job on every day "
        "of the bundled 2020 trace of Germany (the report says how). "
        f"The training runs used {format_energy(result.energy_j)}; the demo took "
        f"{result.duration_s:.0f} s. "
        f"Report: {result.report_path}",
        highlight=False,
        markup=False,
    )
