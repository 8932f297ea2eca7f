"""Rich rendering of runs for humans. Every energy figure shows its provenance.

Names, paths and notes come from users and the store: they are escaped before Rich sees
them, and plain lines are printed with ``markup=False``.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Table

from wattwise._records import RunAllocation, RunResult
from wattwise._units import format_energy
from wattwise.cli._render_members import render_members

__all__ = ["format_energy", "render_run", "runs_table"]


_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
}


def _plus_minus(uncertainty_j: float | None) -> str:
    return f" ± {format_energy(uncertainty_j)}" if uncertainty_j is not None else ""


def render_run(result: RunResult, console: Console) -> None:
    """Print a run's summary: totals, what it was given (its recorded allocation),
    components with provenance, windows and gaps."""
    style = _STATUS_STYLE.get(result.status.value, "white")
    title = (
        f"run [bold]{escape(result.name)}[/] ({escape(result.run_id[:12])}) "
        f"[{style}]{result.status.value}[/]"
    )
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
            f"net      {format_energy(result.net_energy_j)}"
            + _plus_minus(result.net_uncertainty_j)
            + f" above an idle baseline of {result.baseline_power_w:.2f} W"
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
    given = result.allocation  # from the environment: printed with markup off, below
    lines.append(
        "allocation " + (given.describe() if given is not None else RunAllocation.NOT_RECORDED)
    )
    for line in lines:
        console.print("  " + line, highlight=False, markup=False)

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
            escape(comp.name),
            format_energy(comp.energy_j),
            format_energy(comp.uncertainty_j),
            escape(comp.source.label()),
            escape(note),
        )
    console.print(table)
    render_members(result, console)
    if result.windows:
        wt = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        wt.add_column("window")
        wt.add_column("duration", justify="right")
        wt.add_column("energy", justify="right")
        wt.add_column("share", justify="right")
        for w in result.windows:
            share = w.energy_j / result.energy_j if result.energy_j > 0 else 0.0
            wt.add_row(
                escape(w.path), f"{w.duration_s:.2f} s", format_energy(w.energy_j), f"{share:.0%}"
            )
        console.print(wt)
    lost = [g for g in result.gaps if not g.recovered]
    if lost:
        console.print(
            f"  [yellow]warning:[/] {len(lost)} sensor gap(s), {result.energy_lost_s:.1f} s in "
            "all: the energy is a lower bound",
            highlight=False,
        )


_SHORT_PROVENANCE = {"measured": "meas.", "estimated": "est.", "mixed": "mixed"}
#: Columns that go first when the terminal is narrow, in that order. id, name, status and
#: energy always show; the provenance then moves into the energy cell ("300 mJ est.").
_DROP_ORDER = ("started (UTC)", "duration", "provenance")
_NAME_MIN_W = 12


class _RunsTable:
    """The runs table, laid out for the width it is rendered at."""

    def __init__(self, runs: list[RunResult]) -> None:
        self.rows = []
        for r in runs:
            self.rows.append(
                {
                    "id": r.run_id[:12],
                    "name": r.name,
                    "status": r.status.value,
                    "started (UTC)": r.started_at.strftime("%m-%d %H:%M:%S"),
                    "duration": f"{r.duration_s:.1f} s",
                    "energy": format_energy(r.energy_j),
                    "provenance": r.provenance,
                }
            )

    def _cell(self, row: dict[str, str], col: str, merged: bool) -> str:
        if col == "energy" and merged:
            return f"{row['energy']} {_SHORT_PROVENANCE.get(row['provenance'], row['provenance'])}"
        return row[col]

    def _needed(self, columns: list[str], name_w: int, per_column: int) -> int:
        merged = "provenance" not in columns
        fixed = sum(
            max([len(_header(c, merged)), *(len(self._cell(r, c, merged)) for r in self.rows)])
            for c in columns
            if c != "name"
        )
        longest_name = max([4, *(len(r["name"]) for r in self.rows)])
        return fixed + min(longest_name, name_w) + per_column * len(columns) + 1

    def _layout(self, width: int) -> tuple[list[str], bool]:
        """The columns that fit in ``width``, and whether to drop the borders too."""
        columns = ["id", "name", "status", "started (UTC)", "duration", "energy", "provenance"]
        for drop in _DROP_ORDER:
            # Each column has one space of padding each side and a border on its left,
            # plus the right edge.
            if self._needed(columns, _NAME_MIN_W, 3) <= width:
                return columns, False
            columns.remove(drop)
        return columns, self._needed(columns, _NAME_MIN_W, 3) > width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        columns, compact = self._layout(options.max_width)
        merged = "provenance" not in columns
        # Narrower than the key columns with borders: no borders, a narrower name column.
        table = (
            Table(header_style="bold", box=None, pad_edge=False)
            if compact
            else Table(header_style="bold")
        )
        name_w = _NAME_MIN_W // 2 if compact else _NAME_MIN_W
        for col in columns:
            table.add_column(
                _header(col, merged),
                justify="right" if col in ("duration", "energy") else "left",
                no_wrap=col != "name",
                min_width=min(name_w, max(len(r["name"]) for r in self.rows))
                if col == "name" and self.rows
                else None,
                overflow="fold",
            )
        for row in self.rows:
            cells = []
            for col in columns:
                cell = escape(self._cell(row, col, merged))
                if col == "status":
                    cell = f"[{_STATUS_STYLE.get(row['status'], 'white')}]{cell}[/]"
                cells.append(cell)
            table.add_row(*cells)
        yield table


def _header(col: str, merged: bool) -> str:
    return "energy (how)" if merged and col == "energy" else col


def runs_table(runs: list[RunResult]) -> RenderableType:
    """A table of runs, newest first, fitted to the width it is printed at.

    id, name, status and energy always show (a long name wraps); on a narrow terminal the
    start time and duration go first, then the provenance joins the energy cell.
    """
    return _RunsTable(runs)
