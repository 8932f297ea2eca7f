"""``wattwise meters``: what energy sources were found here, which not, and why."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError
from wattwise.cli._common import console, fail, print_json
from wattwise.meters._estimate import EstimateMeter
from wattwise.meters._registry import PROBE_ORDER, detect_meters

__all__ = ["check_cpu_settings", "meters"]


def check_cpu_settings(cpu_tdp_w: float | None) -> None:
    """Exit 2 with one line when --cpu-tdp-w or WATTWISE_CPU_TDP_W/_THREADS is implausible."""
    try:
        EstimateMeter(cpu_tdp_w=cpu_tdp_w).check_settings()
    except ConfigError as exc:
        fail(str(exc))


def meters(
    cpu_tdp_w: Annotated[
        float | None,
        typer.Option("--cpu-tdp-w", help="Your CPU's power in W, where it is not in the table."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Probe every meter in its fixed order and say what will be used."""
    check_cpu_settings(cpu_tdp_w)
    detection = detect_meters(cpu_tdp_w=cpu_tdp_w)
    used = {m.name for m in detection.meters}
    if json_out:
        print_json(
            {
                "probe_order": list(PROBE_ORDER),
                "meters": [
                    {
                        "meter": p.meter,
                        "available": p.available,
                        "used": p.meter in used,
                        "reason": p.reason,
                        "components": list(p.components),
                    }
                    for p in detection.probes
                ],
                "notes": list(detection.notes),
                "allocation": (
                    detection.allocation.to_dict() if detection.allocation is not None else None
                ),
            }
        )
        return
    table = Table(header_style="bold")
    table.add_column("meter")
    table.add_column("found")
    table.add_column("used")
    table.add_column("components")
    table.add_column("why")
    for p in detection.probes:
        table.add_row(
            p.meter,
            "[green]yes[/]" if p.available else "[red]no[/]",
            "yes" if p.meter in used else "",
            escape(", ".join(p.components)),
            escape(p.reason),
        )
    console.print(table)
    if detection.allocation is not None:
        for line in detection.allocation.summary():
            console.print(f"[bold]allocation:[/] {escape(line)}", highlight=False)
    for note in detection.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
