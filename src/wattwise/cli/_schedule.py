"""``wattwise schedule``: the lowest-carbon time (and zone) to run a job before a deadline.

Mounted by the main app as ``app.command("schedule")(schedule)``.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise.carbon import (
    UNITS_RELATIVE,
    IntensityTrace,
    ScheduleResult,
    load_trace,
    parse_duration,
    parse_instant,
    parse_timezone,
    schedule_job,
)
from wattwise.cli._common import console, fail, print_json

__all__ = ["schedule"]


def _split_trace_spec(spec: str) -> tuple[str | None, Path]:
    """``ZONE=PATH`` or ``PATH`` (a path that exists as written wins over a split)."""
    if Path(spec).is_file() or "=" not in spec:
        return None, Path(spec)
    zone, _, path = spec.partition("=")
    if not zone.strip() or not path.strip():
        raise ConfigError(f"--trace {spec!r} is not [ZONE=]PATH")
    return zone.strip(), Path(path.strip())


def _load(
    specs: list[str], tz: tzinfo | None, step: str | None, basis: str | None
) -> list[IntensityTrace]:
    step_s = parse_duration(step, what="--step") if step else None
    traces: list[IntensityTrace] = []
    seen: dict[str, str] = {}
    for spec in specs:
        zone, path = _split_trace_spec(spec)
        trace = load_trace(path, zone=zone, tz=tz, basis=basis)
        if trace.zone in seen:
            raise ConfigError(
                f"zone {trace.zone!r} is given twice (--trace {seen[trace.zone]} and {spec}): "
                "compare different zones, or name them with ZONE=PATH"
            )
        seen[trace.zone] = spec
        traces.append(trace.resample(step_s) if step_s else trace)
    return traces


def _when(moment: datetime, tz: tzinfo | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """A UTC instant shown in ``tz`` (UTC when None, never the machine's local zone)."""
    return (moment.astimezone(tz) if tz else moment).strftime(fmt)


def _render(result: ScheduleResult, tz: tzinfo | None) -> None:
    units = result.units
    best = result.best
    console.print(
        f"Best: [bold]{escape(best.zone)}[/], start [bold]{_when(best.start, tz)}[/], "
        f"end {_when(best.end, tz)} — {best.emissions:.4g} {escape(units)}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Baseline (start now in {escape(result.baseline.zone)}, "
        f"{_when(result.window_start, tz)}): "
        f"{result.baseline.baseline_emissions:.4g} {escape(units)}; "
        f"saving [bold]{result.saving_ratio:.1%}[/]",
        highlight=False,
        soft_wrap=True,
    )
    if len(best.slots) > 1:
        runs = ", ".join(f"{_when(a, tz)}–{_when(b, tz, '%H:%M')}" for a, b in best.slots)
        console.print(f"Slots: {runs}", highlight=False, soft_wrap=True, markup=False)
    for plan in result.plans:
        if plan.gaps:
            hours = sum((b - a).total_seconds() for a, b in plan.gaps) / 3600
            spans = ", ".join(f"{_when(a, tz)}–{_when(b, tz)}" for a, b in plan.gaps)
            console.print(
                f"No data in trace {plan.zone} for {spans} ({hours:g} h in all): "
                "no start overlapping it was considered.",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
    if len(result.plans) > 1:
        table = Table("zone", "best start", "end", "emissions", "baseline", "saving")
        for plan in result.plans:
            table.add_row(
                escape(plan.zone),
                _when(plan.start, tz),
                _when(plan.end, tz),
                f"{plan.emissions:.4g}",
                f"{plan.baseline_emissions:.4g}",
                f"{plan.saving_ratio:.1%}",
            )
        console.print(table)
        console.print(f"Emissions in {units}.", highlight=False, markup=False)
    if units == UNITS_RELATIVE:
        console.print(
            "Relative units: pass --power-w or --energy-j for grams of CO2e.",
            style="dim",
            highlight=False,
        )


def schedule(
    trace: Annotated[
        list[str],
        typer.Option(
            "--trace",
            help="Intensity trace [ZONE=]PATH (CSV, or Parquet with pyarrow); repeat to "
            "compare zones.",
        ),
    ],
    duration: Annotated[str, typer.Option("--duration", help="Job length: 4h, 30m, 1h30m.")],
    deadline: Annotated[str, typer.Option("--deadline", help="Latest end, ISO 8601.")],
    start: Annotated[
        str, typer.Option("--start", help="Earliest start, ISO 8601 (default: now).")
    ] = "now",
    interruptible: Annotated[
        bool, typer.Option("--interruptible", help="The job may pause between trace slots.")
    ] = False,
    min_chunk: Annotated[
        str | None,
        typer.Option("--min-chunk", help="Shortest run when interruptible, e.g. 30m."),
    ] = None,
    power_w: Annotated[
        float | None, typer.Option("--power-w", help="The job's mean power, in W.")
    ] = None,
    energy_j: Annotated[
        float | None, typer.Option("--energy-j", help="The job's energy, in J.")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone of naive times in files and flags (default UTC)."),
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="Resample traces to this step, e.g. 1h.")
    ] = None,
    basis: Annotated[
        str | None,
        typer.Option("--basis", help="Electricity Maps exports: 'lca' (default) or 'direct'."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the lowest-carbon time (and zone) to run a job before its deadline."""
    try:
        if min_chunk is not None and not interruptible:
            fail("--min-chunk needs --interruptible")
        zone_tz = parse_timezone(tz)
        duration_s = parse_duration(duration, what="--duration")
        min_chunk_s = parse_duration(min_chunk, what="--min-chunk") if min_chunk else None
        begin = parse_instant(start, zone_tz)
        end = parse_instant(deadline, zone_tz)
        traces = _load(trace, zone_tz, step, basis)
        result = schedule_job(
            traces,
            start=begin,
            deadline=end,
            duration_s=duration_s,
            interruptible=interruptible,
            min_chunk_s=min_chunk_s,
            power_w=power_w,
            energy_j=energy_j,
        )
    except WattwiseError as exc:
        fail(str(exc))
    if as_json:
        print_json(result.to_dict())
    else:
        _render(result, zone_tz)
