"""Rich rendering of runs for humans. Every energy figure shows its provenance."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from wattwise._units import format_energy
from wattwise.tracking._records import RunResult

__all__ = ["format_energy", "render_run", "runs_table"]


_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
}


def render_run(result: RunResult, console: Console) -> None:
    """Print a run's summary: totals, components with provenance, windows and gaps."""
    style = _STATUS_STYLE.get(result.status.value, "white")
    title = f"run [bold]{result.name}[/] ({result.run_id[:12]}) [{style}]{result.status.value}[/]"
    console.print(title, highlight=False)
    lines = [
        f"duration {result.duration_s:.2f} s, scope {result.scope.value}",
        f"energy   {format_energy(result.energy_j)} ± {format_energy(result.uncertainty_j)}"
        f" ({result.provenance})",
    ]
    if result.duration_s > 0:
        lines.append(f"power    {result.energy_j / result.duration_s:.2f} W mean")
    if result.baseline_power_w is not None and result.net_energy_j is not None:
        lines.append(
            f"net      {format_energy(result.net_energy_j)} above an idle baseline of "
            f"{result.baseline_power_w:.2f} W"
        )
    if result.exit_code is not None:
        lines.append(f"exit     {result.exit_code}")
    if result.carbon is not None:
        c = result.carbon
        lines.append(
            f"carbon   {c.emissions_g:.3f} gCO2e ({c.zone}, {c.intensity_g_per_kwh:.0f} "
            f"gCO2e/kWh, PUE {c.pue:.2f}; {c.intensity_source})"
        )
    else:
        lines.append("carbon   not computed (no zone given)")
    for line in lines:
        console.print("  " + line, highlight=False)

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("component")
    table.add_column("energy", justify="right")
    table.add_column("±", justify="right")
    table.add_column("source")
    table.add_column("note")
    for comp in result.components:
        note = "" if comp.counted else "part of another, not added"
        if comp.gap_s > 0:
            note = (note + "; " if note else "") + f"{comp.gap_s:.1f} s unreadable, energy lost"
        table.add_row(
            comp.name,
            format_energy(comp.energy_j),
            format_energy(comp.uncertainty_j),
            comp.source.label(),
            note,
        )
    console.print(table)
    if result.windows:
        wt = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        wt.add_column("window")
        wt.add_column("duration", justify="right")
        wt.add_column("energy", justify="right")
        wt.add_column("share", justify="right")
        for w in result.windows:
            share = w.energy_j / result.energy_j if result.energy_j > 0 else 0.0
            wt.add_row(w.path, f"{w.duration_s:.2f} s", format_energy(w.energy_j), f"{share:.0%}")
        console.print(wt)
    lost = [g for g in result.gaps if not g.recovered]
    if lost:
        console.print(
            f"  [yellow]warning:[/] {len(lost)} sensor gap(s), {result.energy_lost_s:.1f} s in "
            "all: the energy is a lower bound",
            highlight=False,
        )


def runs_table(runs: list[RunResult]) -> Table:
    """A table of runs, newest first."""
    table = Table(header_style="bold")
    for col in ("id", "name", "status", "started (UTC)", "duration", "energy", "provenance"):
        table.add_column(
            col,
            justify="right" if col in ("duration", "energy") else "left",
            no_wrap=col != "name",
            min_width=12 if col == "name" else None,
        )
    for r in runs:
        style = _STATUS_STYLE.get(r.status.value, "white")
        table.add_row(
            r.run_id[:12],
            r.name,
            f"[{style}]{r.status.value}[/]",
            r.started_at.strftime("%m-%d %H:%M:%S"),
            f"{r.duration_s:.1f} s",
            format_energy(r.energy_j),
            r.provenance,
        )
    return table
