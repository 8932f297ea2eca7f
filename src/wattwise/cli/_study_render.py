"""How ``wattwise study`` shows a study to people: tables of medians ± spread, the tests,
the headline and the notes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from wattwise._records import Provenance
from wattwise.cli._common import console
from wattwise.cli._render import format_energy

if TYPE_CHECKING:
    from wattwise.studies import (
        ArchitectureStudy,
        Comparison,
        EnvironmentStudy,
        LayerStudy,
        Summary,
    )

__all__ = ["render_architectures", "render_environments", "render_layers"]


def _spread(s: Summary, fmt: Callable[[float], str]) -> str:
    """The median, ± half the interquartile range relative to it."""
    if s.n < 2 or s.median == 0:
        return fmt(s.median)
    return f"{fmt(s.median)} ±{s.iqr / 2 / abs(s.median):.0%}"


def _p(c: Comparison | None) -> str:
    if c is None:
        return ""
    if c.p_value is None:
        return "n/a"
    mark = {True: " *", False: "", None: " ?"}[c.significant]
    return f"p={c.p_value:.2g}{mark}"


def _num(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    return table


def _footer(notes: Sequence[str], study_id: str, stored: bool) -> None:
    for note in notes:
        console.print(f"  note: {note}", highlight=False, style="dim", markup=False)
    where = "stored" if stored else "not stored"
    console.print(f"  study {study_id[:12]} ({where})", highlight=False)


def render_architectures(study: ArchitectureStudy) -> None:
    table = _table(
        "model", "params", "FLOPs", "energy", "time", "val acc", "per pp", "front", "vs best"
    )
    for m in study.models:
        r = m.runs
        per_point = m.energy_per_accuracy_point_j
        vs = ""
        if m.versus is not None:
            vs = f"{m.versus.energy_change_frac:+.0%} {_p(m.versus.energy_test)}"
        table.add_row(
            escape(m.model),
            _num(m.params),
            _num(m.flops),
            _spread(r.energy_j, format_energy),
            _spread(r.duration_s, lambda v: f"{v:.2f} s"),
            _spread(r.val_accuracy, lambda v: f"{v:.3f}"),
            format_energy(per_point) if per_point is not None else "-",
            "●" if m.pareto else "",
            vs or "(best)",
        )
    console.print(table)
    sources = Provenance.combine(m.runs.energy_source for m in study.models)
    console.print(
        f"  medians ± half the interquartile range over {study.method['repeats']} repeats; "
        f"energy {sources}; * significant, ? test cannot decide",
        highlight=False,
        markup=False,
    )
    console.print(f"  Pareto front: {', '.join(study.pareto_front)}", highlight=False, markup=False)
    console.print(f"  [bold]headline[/]: {escape(study.saving.describe())}", highlight=False)
    _footer(study.notes, study.study_id, study.stored)


def render_layers(study: LayerStudy) -> None:
    table = _table("layer", "type", "params", "FLOPs", "fwd ms", "bwd ms", "time", "energy*")
    for row in study.layers:
        table.add_row(
            escape(row.name),
            escape(row.type),
            _num(row.params) if row.params else "",
            _num(row.flops) if row.flops else "",
            f"{row.forward_s * 1e3:.3f}",
            f"{row.backward_s * 1e3:.3f}",
            f"{row.time_share:.1%}",
            format_energy(row.energy_per_step_j),
        )
    console.print(table)
    by_type = ", ".join(f"{k} {v:.1%}" for k, v in study.by_type.items())
    console.print(f"  energy by type: {by_type}", highlight=False, markup=False)
    console.print(
        "  * attributed: measured energy per step × the layer's share of profiled step time",
        highlight=False,
    )
    console.print(
        f"  measured: {_spread(study.energy_per_step_j, format_energy)} per "
        f"step over {study.steps_per_window}-step windows × {study.energy_per_step_j.n} — "
        f"{study.energy_source}; profiler overhead {study.profiler_overhead_frac:+.0%}",
        highlight=False,
        markup=False,
    )
    if study.variants:
        vt = _table("variant", "change", "params", "energy", "val acc", "Δ energy", "Δ acc")
        for v in study.variants:
            vs = v.versus
            vt.add_row(
                escape(v.model),
                escape(v.change),
                _num(v.params),
                _spread(v.runs.energy_j, format_energy),
                _spread(v.runs.val_accuracy, lambda x: f"{x:.3f}"),
                f"{vs.energy_change_frac:+.0%} {_p(vs.energy_test)}" if vs else "(base)",
                f"{vs.accuracy_change_pp:+.1f} pp {_p(vs.accuracy_test)}" if vs else "",
            )
        console.print(vt)
    _footer(study.notes, study.study_id, study.stored)


def render_environments(study: EnvironmentStudy) -> None:
    table = _table("environment", "energy", "time", "val acc", "vs baseline", "GPU")
    for r in study.environments:
        vs = r.versus
        gpu = ""
        if r.gpu is not None and r.gpu_fit is not None:
            gpu = f"{r.gpu.utilisation_frac:.0%} busy" + (
                ", oversized" if r.gpu_fit.oversized else ""
            )
        table.add_row(
            escape(r.setting.label),
            _spread(r.runs.energy_j, format_energy),
            _spread(r.runs.duration_s, lambda v: f"{v:.2f} s"),
            _spread(r.runs.val_accuracy, lambda v: f"{v:.3f}"),
            f"{vs.energy_change_frac:+.0%} {_p(vs.energy_test)}" if vs else "(baseline)",
            gpu,
        )
    console.print(table)
    console.print(
        f"  [bold]recommendation[/]: {escape(study.recommendation.describe())}", highlight=False
    )
    _footer(study.notes, study.study_id, study.stored)
