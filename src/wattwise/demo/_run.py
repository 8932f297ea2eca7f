"""The demo: every lever built so far, measured in this run, ending in one report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import wattwise
from wattwise._units import format_energy as fmt_j
from wattwise.demo import _measure as measure
from wattwise.demo import _sections as sections
from wattwise.demo._records import DemoSettings, Headline, LeverOutcome, Step, Unit
from wattwise.protocol import StoreArg
from wattwise.report import Report, Section, Table, write_report

__all__ = ["DemoResult", "run_demo"]

#: The levers in the order they run; each adds a step to the progress bar.
LEVER_STEPS = 11


@dataclass(frozen=True)
class DemoResult:
    """What the demo did.

    Attributes:
        levers: one outcome per lever (the closing table).
        headline: what the training and the inference levers cut, from ``levers``.
        report_path: the HTML report.
        json_path: the same figures as JSON.
        duration_s: how long the demo took, in s.
        energy_j: energy of all its training, in J.
        source: provenance of that energy.
    """

    levers: tuple[LeverOutcome, ...]
    headline: Headline
    report_path: Path
    json_path: Path
    duration_s: float
    energy_j: float
    source: str


def _fmt_value(value: float, unit: Unit) -> str:
    return fmt_j(value) if unit is Unit.J else f"{value:.4f} {unit.value}"


def _saved(o: LeverOutcome) -> str:
    """The saving; a lever that saved nothing (or cost more) says why, in the same cell,
    and one that changed nothing reads 0 % with the noise between its two runs."""
    if not o.applied:
        return f"0% (the runs differ by {o.saving_frac:.0%}: noise): {o.note}"
    text = f"{o.saving_frac:.0%}"
    return f"{text}: {o.note}" if round(100 * o.saving_frac) <= 0 and o.note else text


def savings_table(levers: tuple[LeverOutcome, ...]) -> Table:
    """The closing table: each lever against its baseline, both measured in this run; a
    saving of 0 % or less carries the lever's note, which says why."""
    rows = tuple(
        (
            o.lever,
            o.baseline,
            _fmt_value(o.baseline_value, o.unit),
            _fmt_value(o.lever_value, o.unit),
            _saved(o),
            "–" if o.accuracy_change_pp is None else f"{o.accuracy_change_pp:+.1f} pp",
            o.spread or "–",
            o.source,
        )
        for o in levers
    )
    return Table(
        (
            "lever",
            "baseline",
            "baseline",
            "with the lever",
            "saved",
            "accuracy",
            "spread",
            "source",
        ),
        rows,
        "Each baseline was measured in this run, on this machine.",
    )


def run_demo(
    out: Path,
    *,
    quick: bool,
    store: StoreArg = None,
    step: Step | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DemoResult:
    """Run the demo and write ``out/report.html`` and ``out/demo.json``.

    Args:
        out: the output folder.
        quick: the short variant (well under 2 minutes on 2 cores).
        store: where the runs go (None: the default store; False: nowhere).
        step: called with a description as each step starts.
        clock: the current time for the report's date (default: now, UTC).
    """
    settings = DemoSettings.make(quick=quick, store=store, clock=clock)
    say: Step = step or (lambda _msg: None)
    t0 = time.monotonic()
    with measure.one_thread():
        study = measure.measure_architectures(settings, say)
        stop_runs = measure.measure_stopping(settings, say)
        trans_runs = measure.measure_transfer(settings, say)
        fits = [*stop_runs.values(), *trans_runs.values()]
        energy_j = sum(f.total_energy_j for f in fits)
        duration_s = sum(f.duration_s for f in fits)
        scenario = measure.measure_carbon(energy_j, duration_s, say)
        quantized = measure.measure_quantization(settings, say)
        batched = measure.measure_batching(settings, say)
        compared = measure.measure_search(settings, say)
    arch, arch_section = sections.architectures_lever(settings, study)
    stop, stop_section = sections.stopping_lever(settings, stop_runs)
    trans, trans_section = sections.transfer_lever(settings, trans_runs)
    carb, carb_section = sections.carbon_lever(scenario)
    quant, quant_section = sections.quantization_lever(settings, quantized)
    batch, batch_section = sections.batching_lever(batched)
    hpo, hpo_section = sections.search_lever(compared)
    levers = (arch, stop, trans, hpo, carb, quant, batch)
    headline = Headline.of(levers, settings.dataset)
    summary = Section(
        "What each lever saved",
        (
            headline.text,
            headline.definition,
            f"Everything below ran just now on this machine ({fits[0].energy_source}), in "
            f"{settings.scope} scope; the training runs used {fmt_j(energy_j)}. Savings are "
            "against baselines measured in this same run.",
        ),
        (savings_table(levers),),
    )
    doc = Report(
        "wattwise demo",
        f"{'quick ' if quick else ''}demo run {settings.clock():%Y-%m-%d %H:%M} UTC",
        (
            summary,
            arch_section,
            stop_section,
            trans_section,
            hpo_section,
            carb_section,
            quant_section,
            batch_section,
        ),
        {"version": wattwise.__version__},
    )
    report_path = write_report(doc, out / "report.html", "html")
    write_report(doc, out / "report.md", "md")
    result = DemoResult(
        levers,
        headline,
        report_path,
        out / "demo.json",
        time.monotonic() - t0,
        energy_j,
        fits[0].energy_source,
    )
    result.json_path.write_text(
        json.dumps(
            {
                "quick": quick,
                "headline": headline.to_dict(),
                "dataset": settings.dataset,
                "duration_s": result.duration_s,
                "energy_j": energy_j,
                "energy_source": result.source,
                "levers": [o.to_dict() for o in levers],
                "report": str(report_path),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return result
