"""``wattwise runs``: list, show and export stored runs."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import StoreNeedsUpgrade, StoreNotFound
from wattwise._records import RunResult
from wattwise.cli._common import console, fail, print_json
from wattwise.cli._render import format_energy, render_run, runs_table
from wattwise.cli._runs_embodied import embodied_json, print_embodied
from wattwise.store import SCHEMA_VERSION, RunStore

__all__ = ["runs_app", "samples_csv"]

runs_app = typer.Typer(
    help="List, show, compare and export stored runs; upgrade the store, recover journals.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class ExportFormat(StrEnum):
    """Formats of ``runs export``."""

    CSV = "csv"
    JSON = "json"


@runs_app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(help="Show at most this many runs.", min=1)] = 50,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    try:
        st = RunStore.open(store, read_only=True)
    except StoreNotFound as exc:  # nothing recorded yet: an empty list, not an error
        if json_out:
            print_json([])
        else:
            console.print(escape(str(exc)), highlight=False, soft_wrap=True)
        return
    try:
        runs = st.list_runs(limit=limit)
    finally:
        st.close()
    if json_out:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        console.print(f"no runs in {st.display_url} yet: try `wattwise run -- CMD`", markup=False)
        return
    console.print(runs_table(runs))


@runs_app.command("upgrade")
def upgrade_store(store: StoreOpt = None) -> None:
    """Upgrade a store written by an older wattwise to this version's tables, keeping
    every run (read-only commands refuse an older store until then)."""
    try:
        RunStore.open(store, read_only=True).close()
    except StoreNotFound as exc:
        console.print(f"{escape(str(exc))}: nothing to upgrade", highlight=False, soft_wrap=True)
        return
    except StoreNeedsUpgrade:
        with RunStore.open(store) as st:  # opening it for writing upgrades it
            console.print(
                f"upgraded {escape(st.display_url)} to schema version {SCHEMA_VERSION}",
                highlight=False,
            )
        return
    console.print(f"the store is at schema version {SCHEMA_VERSION} already", highlight=False)


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one run: totals, components with their sources, windows and gaps."""
    st = RunStore.open(store, read_only=True)
    try:
        result = st.get_run(run_id)
    finally:
        st.close()
    if json_out:
        print_json(embodied_json(result))
    else:
        render_run(result, console)
        print_embodied(result, console)


def samples_csv(result: RunResult) -> str:
    """The run's timeline as CSV (the format :class:`~wattwise.meters.ReplayMeter` reads)."""
    comps = {c.name: c for c in result.components}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "component",
            "kind",
            "method",
            "sensor",
            "counted",
            "relative_uncertainty",
            "t_start_s",
            "t_end_s",
            "energy_j",
            "power_w",
            "note",
        ]
    )
    for s in result.samples:
        c = comps.get(s.component)
        if c is None:
            continue
        rel = c.uncertainty_j / c.energy_j if c.energy_j > 0 else 0.0
        writer.writerow(
            [
                s.component,
                c.kind.value,
                c.source.method.value,
                c.source.sensor,
                str(c.counted).lower(),
                f"{rel:.6g}",
                f"{s.t_start_s:.6f}",
                f"{s.t_end_s:.6f}",
                "" if s.energy_j is None else f"{s.energy_j:.9g}",
                "" if s.power_w is None else f"{s.power_w:.6g}",
                s.note or "",
            ]
        )
    return buf.getvalue()


@runs_app.command("compare")
def compare_runs(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids or prefixes.")],
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Runs side by side: energy, net energy, emissions, duration and sources."""
    if len(run_ids) < 2:
        fail("give at least two runs to compare")
    st = RunStore.open(store, read_only=True)
    try:
        results = [st.get_run(r) for r in run_ids]
    finally:
        st.close()
    base = results[0]
    if json_out:
        print_json(
            [
                {
                    "run_id": r.run_id,
                    "name": r.name,
                    "energy_j": r.energy_j,
                    "uncertainty_j": r.uncertainty_j,
                    "net_energy_j": r.net_energy_j,
                    "net_uncertainty_j": r.net_uncertainty_j,
                    "emissions_g": r.carbon.emissions_g if r.carbon else None,
                    "zone": r.carbon.zone if r.carbon else None,
                    "duration_s": r.duration_s,
                    "provenance": r.provenance,
                    "sources": _sources(r),
                    "scope": r.scope.value,
                    "host": r.host,
                    "vs_first": None if i == 0 else _versus(r, base),
                }
                for i, r in enumerate(results)
            ]
        )
        return
    from wattwise.report import compare_table

    table = compare_table(results)
    rich_table = Table(header_style="bold")
    for col in table.columns:
        rich_table.add_column(col)
    for row in table.rows:
        rich_table.add_row(*(escape(cell) for cell in row))
    console.print(rich_table)
    for r in results[1:]:
        versus = _versus(r, base)
        this, first = f"{r.name} ({r.run_id[:8]})", f"{base.name} ({base.run_id[:8]})"
        ranges = (
            f"{format_energy(r.energy_j)} ± {format_energy(r.uncertainty_j)} vs "
            f"{format_energy(base.energy_j)} ± {format_energy(base.uncertainty_j)}"
        )
        if versus["within_uncertainty"]:
            line = f"{this} used the same energy as {first} within uncertainty ({ranges})"
        elif versus["energy_ratio"] is None:
            line = f"{this} used {format_energy(r.energy_j)}; {first} used none to compare with"
        else:
            line = (
                f"{this} used {versus['energy_ratio']:.2f}x the energy of {first} ({ranges}, "
                "beyond the uncertainty)"
            )
        console.print(line, highlight=False, markup=False, soft_wrap=True)
        for field, (in_first, in_this) in versus["differs"].items():
            console.print(
                f"  not like for like: {field} {in_this} here, {in_first} in {first}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


def _sources(r: RunResult) -> list[str]:
    return sorted({c.source.label() for c in r.components if c.counted})


def _versus(r: RunResult, base: RunResult) -> dict[str, Any]:
    """How run ``r`` compares with ``base``: the energy ratio, whether the ± ranges overlap,
    and every setting that makes the two not like for like ({field: [base, r]})."""
    overlap = abs(r.energy_j - base.energy_j) <= r.uncertainty_j + base.uncertainty_j

    def settings(x: RunResult) -> dict[str, str | None]:
        return {
            "zone": x.carbon.zone if x.carbon else None,
            "scope": x.scope.value,
            "machine": x.host,
            "provenance": x.provenance,
            "sources": ", ".join(_sources(x)),
        }

    ours, theirs = settings(base), settings(r)
    differs = {k: [ours[k], theirs[k]] for k in ours if ours[k] != theirs[k]}
    return {
        "energy_ratio": r.energy_j / base.energy_j if base.energy_j > 0 else None,
        "within_uncertainty": overlap,
        "differs": differs,
    }


@runs_app.command("export")
def export_run(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv: the timeline; json: all.")],
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    store: StoreOpt = None,
) -> None:
    """Export a run's power timeline (CSV) or everything about it (JSON)."""
    st = RunStore.open(store, read_only=True)
    try:
        result = st.get_run(run_id, with_samples=True)
    finally:
        st.close()
    if fmt is ExportFormat.CSV:
        text = samples_csv(result)
    else:
        data = result.to_dict()
        data["samples"] = [
            {
                "component": s.component,
                "t_start_s": s.t_start_s,
                "t_end_s": s.t_end_s,
                "energy_j": s.energy_j,
                "power_w": s.power_w,
                "note": s.note,
            }
            for s in result.samples
        ]
        text = json.dumps(data, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"wrote {out}", highlight=False, markup=False)
