"""``wattwise demo``: the main job on bundled/synthetic data, every figure from this run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from wattwise.cli._common import console, fail
from wattwise.cli._render import format_energy, render_run
from wattwise.tracking._tracker import Tracker
from wattwise.workloads import NumpyMLP, make_blobs

__all__ = ["demo"]


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's outputs.")] = Path(
        "wattwise-report"
    ),
    quick: Annotated[bool, typer.Option(help="A shorter run (well under 2 minutes).")] = False,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    cpu_tdp_w: Annotated[
        float | None,
        typer.Option("--cpu-tdp-w", help="Your CPU's power in W, where it is not in the table."),
    ] = None,
) -> None:
    """Train a small network on synthetic data while measuring it, and summarise the run."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror}")
    epochs = 8 if quick else 30
    n_samples, hidden = 16000, 1024
    console.print(
        f"[bold]wattwise demo[/]: training an MLP (64-{hidden}-10) on {n_samples} synthetic "
        f"rows for {epochs} epochs, measured as it runs"
    )
    tracker = Tracker("demo: numpy MLP", store=store, cpu_tdp_w=cpu_tdp_w, interval_s=0.5)
    with tracker:
        with tracker.window("data"):
            x, y = make_blobs(n_samples, 64, 10, spread=7.0, seed=1)
            split = int(0.8 * len(x))
            xtr, ytr, xva, yva = x[:split], y[:split], x[split:], y[split:]
        model = NumpyMLP(64, hidden, 10, lr=0.01, seed=1)
        accuracies = []
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} epochs"),
            TextColumn("{task.fields[energy]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("training", total=epochs, energy="")
            for epoch in range(1, epochs + 1):
                with tracker.window(f"epoch-{epoch}"):
                    with tracker.window("train"):
                        model.train_epoch(xtr, ytr)
                    with tracker.window("eval"):
                        accuracies.append(model.accuracy(xva, yva))
                progress.update(
                    task,
                    advance=1,
                    energy=f"{format_energy(tracker.energy_j)} so far, "
                    f"val acc {accuracies[-1]:.3f}",
                )
    result = tracker.result
    assert result is not None
    render_run(result, console)
    console.print(f"  final validation accuracy {accuracies[-1]:.3f}", highlight=False)
    path = out / "demo-run.json"
    data = result.to_dict()
    data["val_accuracy"] = accuracies
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    console.print(f"  run stored as {result.run_id[:12]}; summary written to {path}")
