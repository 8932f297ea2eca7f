"""The report's sections and the closing table's rows, built from the demo's measurements.

Every lever gives a :class:`LeverOutcome` (one row of the closing table, its figures with
their unit) and a report :class:`~wattwise.report.Section`; :mod:`wattwise.demo._measure`
measured both sides in this run. Nothing here measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wattwise._units import format_energy as fmt_j
from wattwise.demo._measure import (
    CARBON_DEADLINE_HOURS,
    CARBON_SUBMIT_HOUR_UTC,
    CARBON_YEAR,
    CARBON_ZONE,
    CarbonScenario,
)
from wattwise.demo._records import DemoSettings, LeverOutcome, Unit
from wattwise.report import Figure, Section, Table
from wattwise.report import _plots as plots

if TYPE_CHECKING:
    from wattwise.infer import BatchingResult, PolicyResult, QuantizationResult
    from wattwise.search import Comparison
    from wattwise.studies import ArchitectureStudy
    from wattwise.train import FitResult

__all__ = [
    "architectures_lever",
    "batching_lever",
    "carbon_lever",
    "quantization_lever",
    "search_lever",
    "stopping_lever",
    "transfer_lever",
]


def architectures_lever(
    settings: DemoSettings, study: ArchitectureStudy
) -> tuple[LeverOutcome, Section]:
    """Models compared on the training workload: the Pareto front and the cheapest model
    near the best."""
    saving = study.saving
    rows = tuple(
        (
            m.model,
            f"{m.params:,}",
            f"{m.flops:,}",
            fmt_j(m.runs.energy_j.median),
            f"{m.runs.val_accuracy.median:.3f}",
            "yes" if m.pareto else "",
        )
        for m in study.models
    )
    labels = [m.model for m in study.models]
    xs = [m.runs.energy_j.median for m in study.models]
    ys = [m.runs.val_accuracy.median for m in study.models]
    front = [i for i, m in enumerate(study.models) if m.pareto]
    section = Section(
        "Architectures: energy against accuracy",
        (
            f"{len(study.models)} models trained on {settings.dataset} for "
            f"{settings.arch_epochs} epochs each, {settings.arch_repeats} repeat(s), medians "
            f"shown; energy {saving.energy_source}. On MNIST-1D architecture matters: "
            "logistic regression and the MLP cannot follow a pattern that moves along the "
            "sequence, the 1-D CNN can. The GRU is left out here: on this CPU it trains "
            "several times slower per epoch than the CNN and ends less accurate "
            "(docs/train.md).",
            saving.describe(),
        ),
        (Table(("model", "params", "FLOPs/sample", "energy", "val acc", "Pareto"), rows),),
        (
            Figure(
                plots.scatter_chart(
                    labels, xs, ys, xlabel="energy (J)", ylabel="validation accuracy", front=front
                ),
                "Energy and accuracy of each model, the Pareto front joined.",
            ),
        ),
    )
    outcome = LeverOutcome(
        lever=f"architecture: {saving.choice}",
        baseline=f"most accurate model ({saving.reference})",
        baseline_value=saving.reference_energy_j,
        lever_value=saving.choice_energy_j,
        accuracy_change_pp=saving.accuracy_change_pp,
        source=saving.energy_source,
        note=f"cheapest model within {settings.within_pp:g} pp of the best"
        if saving.choice != saving.reference
        else f"the most accurate model is also the cheapest within {settings.within_pp:g} pp: "
        "nothing cheaper to pick",
        spread=_study_spread(study, (saving.reference, saving.choice)),
    )
    return outcome, section


def _study_spread(study: ArchitectureStudy, models: tuple[str, ...]) -> str:
    """The spread of the study's energies of ``models`` over their repeats."""
    parts = []
    for m in study.models:
        if m.model in models:
            e = m.runs.energy_j
            parts.append(
                f"{m.model}: one run"
                if e.n == 1
                else f"{m.model}: IQR {fmt_j(e.q1)}-{fmt_j(e.q3)} over {e.n} runs"
            )
    return "; ".join(parts)


def stopping_lever(
    settings: DemoSettings, results: dict[str, FitResult]
) -> tuple[LeverOutcome, Section]:
    """The learning-curve rule against the full planned run."""
    full, stopped = results["full planned run"], results["learning-curve rule"]
    acc_full = full.final_val_accuracy or 0.0
    acc_stop = stopped.final_val_accuracy or 0.0
    why = stopped.stop.reason if stopped.stop is not None else "ran every planned epoch"
    section = Section(
        "Stopping when the learning curve says the rest is not worth it",
        (
            f"{settings.model} on {settings.dataset}, {settings.full_epochs} epochs planned. "
            "The full run "
            f"used {fmt_j(full.total_energy_j)} for {acc_full:.3f} validation accuracy. The "
            "learning-curve rule fits a curve to the validation accuracy after each epoch, "
            "predicts where the planned run ends, and stops once the model in hand is within "
            f"1 pp of it: it stopped after {len(stopped.epochs)} epochs ({why}) using "
            f"{fmt_j(stopped.total_energy_j)} for {acc_stop:.3f}. Both measured here "
            f"({full.energy_source}).",
        ),
        figures=(
            Figure(
                plots.line_chart(
                    [
                        (label, [e.epoch for e in r.epochs], [e.val_accuracy for e in r.epochs])
                        for label, r in results.items()
                    ],
                    xlabel="epoch",
                    ylabel="validation accuracy",
                    secondary=(
                        "energy per epoch (full run)",
                        [e.epoch for e in full.epochs],
                        [e.energy_j for e in full.epochs],
                        "energy per epoch (J)",
                    ),
                ),
                "Validation accuracy per epoch of both runs, and the energy of each epoch.",
            ),
        ),
    )
    outcome = LeverOutcome(
        lever="stop by the learning curve",
        baseline=f"full planned run ({settings.full_epochs} epochs)",
        baseline_value=full.total_energy_j,
        lever_value=stopped.total_energy_j,
        accuracy_change_pp=100 * (acc_stop - acc_full),
        source=full.energy_source,
        note=f"stopped after {len(stopped.epochs)} of {settings.full_epochs} epochs"
        if stopped.stop is not None
        else "the learning-curve rule never fired: both runs trained every planned epoch "
        "(the curve still rising more than 1 pp)",
        spread="one run each (the same seed)",
        applied=stopped.stop is not None,
    )
    return outcome, section


def transfer_lever(
    settings: DemoSettings, runs: dict[str, FitResult]
) -> tuple[LeverOutcome, Section]:
    """New classes by extending a trained model, against training from scratch."""
    pre, scratch, tuned = runs["pretrain"], runs["scratch"], runs["transfer"]
    target = settings.target_accuracy

    def reached(r: FitResult) -> str:
        acc = r.final_val_accuracy or 0.0
        return f"{acc:.3f} ({'reached' if acc >= target else 'not reached'})"

    rows = (
        (
            "pre-training on classes 0-7 (already done)",
            str(len(pre.epochs)),
            fmt_j(pre.total_energy_j),
            f"{pre.final_val_accuracy or 0:.3f} on 0-7",
        ),
        (
            "classes 0-9 from scratch",
            str(len(scratch.epochs)),
            fmt_j(scratch.total_energy_j),
            reached(scratch),
        ),
        (
            "classes 0-9 by extending the 0-7 model",
            str(len(tuned.epochs)),
            fmt_j(tuned.total_energy_j),
            reached(tuned),
        ),
    )
    section = Section(
        "Transfer learning for new classes",
        (
            f"As sAIn does for new gestures: {settings.model} trained on classes 0-7 of "
            f"{settings.dataset} gets two new output rows (the eight learned rows kept) and "
            f"is fine-tuned on 0-9 until {target:.0%} validation accuracy, against training "
            f"0-9 from scratch to the same target. Energy {scratch.energy_source}.",
        ),
        (Table(("run", "epochs", "energy", "final val acc"), rows),),
    )
    outcome = LeverOutcome(
        lever="transfer learning (extend the head)",
        baseline=f"classes 0-9 from scratch to {target:.0%}",
        baseline_value=scratch.total_energy_j,
        lever_value=tuned.total_energy_j,
        accuracy_change_pp=100
        * ((tuned.final_val_accuracy or 0) - (scratch.final_val_accuracy or 0)),
        source=scratch.energy_source,
        note=f"pre-training on 0-7 cost {fmt_j(pre.total_energy_j)} more, once"
        if tuned.total_energy_j < scratch.total_energy_j
        else f"fine-tuning needed {len(tuned.epochs)} epochs, from scratch "
        f"{len(scratch.epochs)}: no saving here",
        spread="one run each (the same seed)",
    )
    return outcome, section


def _embodied_paragraph(scenario: CarbonScenario) -> tuple[str, ...]:
    """One line beside the carbon figures: the training's share of the hardware's
    manufacturing footprint, an estimate with its range, never added into them."""
    e = scenario.embodied
    if e is None:
        return ()
    return (
        f"Beside these: the training's share of this machine's manufacturing footprint, "
        f"estimated at ~{e.embodied_g:.3g} gCO2e (range {e.low_g:.3g}-{e.high_g:.3g} "
        f"gCO2e; {e.lifetime_years:g}-year lifetime, {e.lifetime_low_years:g}-"
        f"{e.lifetime_high_years:g} years; published component factors, see docs/carbon.md). "
        "It is an estimate and is not included in the emissions above.",
    )


def carbon_lever(scenario: CarbonScenario) -> tuple[LeverOutcome, Section]:
    """The demo's emissions in two zones, and carbon-aware timing of a daily job on the
    bundled 2020 trace (a fixed scenario: the same answer whatever the day it is run)."""
    import numpy as np

    energy_j, job_hours = scenario.energy_j, scenario.job_hours
    de, fr, days, skipped = scenario.de, scenario.fr, scenario.days, scenario.skipped
    e_de, e_fr = scenario.emissions_de, scenario.emissions_fr
    savings = np.array([d.saving_frac for d in days])
    median = float(np.median(savings))
    q25, q75 = (float(q) for q in np.percentile(savings, [25, 75]))
    none_saved = int(np.count_nonzero(savings < 1e-9))
    baseline_g = sum(d.baseline_g for d in days)
    best_g = sum(d.best_g for d in days)
    hours = np.array([d.best_start.hour for d in days])
    common = int(np.bincount(hours, minlength=24).argmax())
    submit = f"{CARBON_SUBMIT_HOUR_UTC:02d}:00 UTC"
    due = f"{(CARBON_SUBMIT_HOUR_UTC + CARBON_DEADLINE_HOURS) % 24:02d}:00 UTC"
    rows = (
        (
            "Germany (DE)",
            f"{de.intensity_g_per_kwh:.0f}",
            de.intensity_source,
            f"{e_de.emissions_g:.4f}",
        ),
        (
            "France (FR)",
            f"{fr.intensity_g_per_kwh:.0f}",
            fr.intensity_source,
            f"{e_fr.emissions_g:.4f}",
        ),
    )
    gap_note = (
        f" {len(skipped)} day(s) are left out because the trace has a gap in their window "
        f"({', '.join(f'{d:%m-%d}' for d in skipped)})."
        if skipped
        else ""
    )
    section = Section(
        "Carbon: where and when",
        (
            f"The demo's training used {fmt_j(energy_j)} (measured above). Its emissions at "
            "each zone's annual mean intensity are below: where a job runs matters most.",
            f"When: a daily job of that energy, {job_hours} h long, submitted at {submit} "
            f"(the end of the working day in Germany) and due by {due} the next morning, on "
            f"{len(days)} days of the bundled {CARBON_YEAR} hourly trace of "
            f"Germany (Wiesner et al. 2021). Started at once it would emit "
            f"{baseline_g:.4f} gCO2e over the year; started at the cleanest hour before the "
            f"deadline (found by wattwise schedule's exact search), {best_g:.4f} gCO2e, "
            f"{1 - best_g / baseline_g:.0%} less. Per day the saving has a median of "
            f"{median:.0%} (interquartile range {q25:.0%} to {q75:.0%}); on {none_saved} "
            f"day(s) starting at once was already the cleanest. The most common best start "
            f"is {common:02d}:00 UTC.{gap_note} The scenario is fixed, so the figures do not "
            "depend on the day the demo is run.",
            *_embodied_paragraph(scenario),
        ),
        (Table(("zone", "gCO2e/kWh", "source", "emissions (g)"), rows),),
    )
    outcome = LeverOutcome(
        lever=f"start at the cleanest hour by {due} (per day: median {median:.0%}, "
        f"IQR {q25:.0%}-{q75:.0%})",
        baseline=f"start at {submit}: a daily job, {len(days)} days of the {CARBON_YEAR} "
        f"{CARBON_ZONE} trace",
        baseline_value=baseline_g,
        lever_value=best_g,
        accuracy_change_pp=None,
        source=f"{CARBON_YEAR} hourly intensity trace of {CARBON_ZONE} (Wiesner et al. 2021)",
        unit=Unit.G_CO2E,
        note=f"same energy every day, shifted within a {CARBON_DEADLINE_HOURS} h deadline; "
        "emissions summed over the year",
        spread=f"per day: median {median:.0%}, IQR {q25:.0%}-{q75:.0%} over {len(days)} days",
        group="emissions",
    )
    return outcome, section


def batching_lever(result: BatchingResult) -> tuple[LeverOutcome, Section]:
    """Dynamic batching against one request at a time, same request stream, where requests
    queue; energy per request net of the idle power measured in the same run."""
    requests = result.requests
    by_name = {p.policy: p for p in result.policies}
    one = next(p for p in result.policies if p.max_batch_size == 1)
    best = by_name.get(result.best or "", one)
    net = one.net_energy_per_item_j is not None and best.net_energy_per_item_j is not None

    def per_request(p: PolicyResult) -> float:
        value = p.net_energy_per_item_j if net else None
        return value if value is not None else p.energy_per_item_j

    rows = tuple(
        (
            p.policy,
            fmt_j(per_request(p)),
            f"{p.p95_latency_s * 1e3:.1f} ms",
            f"{p.requests / p.batches:.1f}" if p.batches else "–",
        )
        for p in result.policies
    )
    what = "net of idle" if net else "gross (no idle measured)"
    section = Section(
        "Batching requests",
        (
            f"{requests} requests at {result.rate_rps:g} req/s (±20 % jitter), a rate set from "
            "the measured batch-1 service time so that one request at a time keeps the server "
            f"busy ({result.tuned_for['text']}); served by the mnist1d CNN on the virtual "
            "clock (each batch takes its measured time, waiting is free). The tuner picks the "
            f"lowest energy per request ({what}) with p95 latency under "
            f"{(result.slo_s or 0) * 1e3:.0f} ms: {result.best} ({result.best_reason}). "
            f"Energy {result.source}.",
            "At light load there is nothing to batch (a request rarely finds another waiting): "
            "batching pays when requests queue, which is why this load was chosen "
            "(docs/infer.md has the curve from light load to saturation).",
        ),
        (Table(("policy", f"energy per request ({what})", "p95 latency", "mean batch"), rows),),
    )
    outcome = LeverOutcome(
        lever=f"batching ({best.policy})",
        baseline="one request at a time",
        baseline_value=per_request(one),
        lever_value=per_request(best),
        accuracy_change_pp=None,
        source=result.source,
        note=f"J per request {what} at {result.rate_rps:g} req/s; p95 "
        f"{best.p95_latency_s * 1e3:.1f} ms against {one.p95_latency_s * 1e3:.1f} ms"
        if best is not one
        else f"the tuner kept one request at a time ({result.best_reason})",
        spread=f"one stream of {requests} requests per policy",
        group="inference",
    )
    return outcome, section


def quantization_lever(
    settings: DemoSettings, result: QuantizationResult
) -> tuple[LeverOutcome, Section]:
    """int8 against fp32 for a compute-bound model, interleaved on the same inputs."""
    fp32 = result.variant("fp32")
    int8 = [v for v in result.variants if v.variant != "fp32"]
    rows = tuple(
        (
            v.variant,
            fmt_j(v.energy_per_item_j),
            f"{v.latency_s * 1e3:.3f} ms",
            f"{v.size_bytes:,}",
            f"{v.accuracy:.3f}",
        )
        for v in result.variants
    )
    paragraphs = [
        f"A compute-bound model, {settings.quant_model}, trained for "
        f"{settings.quant_epochs} epochs on {settings.dataset}, quantized to int8 (torchao "
        "PT2E) and measured against fp32 on its validation set, interleaved, "
        f"{len(result.variants)} variants x {_rounds(settings)} rounds. Its matrix products "
        "dominate each inference, which is where int8 kernels pay; the small CNNs of the "
        "other sections are overhead-bound, and int8 cannot win there (issue 14 measured "
        f"3.40x less energy per inference for this MLP on digits). Energy {result.source}.",
        *result.notes,
    ]
    if result.skipped:
        paragraphs.append(
            "Not made here: " + "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
        )
    section = Section(
        "Quantization",
        tuple(paragraphs),
        (Table(("variant", "energy per inference", "latency", "bytes", "accuracy"), rows),),
    )
    if not int8:
        outcome = LeverOutcome(
            "int8 quantization",
            "fp32",
            fp32.energy_per_item_j,
            fp32.energy_per_item_j,
            None,
            result.source,
            note="no int8 variant could be made here",
            group="inference",
        )
        return outcome, section
    best = min(int8, key=lambda v: v.energy_per_item_j)
    outcome = LeverOutcome(
        lever=f"int8 ({best.variant})",
        baseline="fp32",
        baseline_value=fp32.energy_per_item_j,
        lever_value=best.energy_per_item_j,
        accuracy_change_pp=100 * (best.accuracy - fp32.accuracy),
        source=result.source,
        note="J per inference; the int8 variant with the lowest energy"
        if best.energy_per_item_j < fp32.energy_per_item_j
        else f"int8 cost as much as fp32 or more on this CPU (kernels: {best.kernels})",
        spread=f"summed over {_rounds(settings)} interleaved rounds; meter uncertainty "
        f"±{_rel(fp32.measurement.uncertainty_j, fp32.measurement.energy_j)} (fp32), "
        f"±{_rel(best.measurement.uncertainty_j, best.measurement.energy_j)} (int8)",
        group="inference",
    )
    return outcome, section


def _rounds(settings: DemoSettings) -> int:
    """Interleaved rounds of the quantization measurement (see ``measure_quantization``)."""
    return 2 if settings.quick else 3


def _rel(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "–"


def search_lever(comparison: Comparison) -> tuple[LeverOutcome, Section]:
    """Bayesian search (TPE) against grid search: energy to reach grid's accuracy, in the
    built-in 1-D CNN's space on the demo's MNIST-1D workload."""
    trials = comparison.trials
    grid, tpe = comparison.strategy("grid"), comparison.strategy("tpe")
    rows = tuple(
        (
            s.strategy,
            "–" if s.best_accuracy is None else f"{s.best_accuracy:.4f}",
            fmt_j(s.total_energy_j),
            "not reached" if s.energy_to_target_j is None else fmt_j(s.energy_to_target_j),
        )
        for s in comparison.strategies
    )
    target = comparison.target_accuracy or 0.0
    section = Section(
        "Hyperparameter search",
        (
            f"The same space (the built-in 1-D CNN's, on {comparison.workload.dataset}) and "
            f"{trials} trials for grid search and for TPE (Bayesian). The "
            f"target is {target:.4f} ({comparison.target_source}); energy to target "
            "counts every trial up to the first that reached it. Energy "
            f"{comparison.energy_source}.",
            *comparison.notes,
        ),
        (Table(("strategy", "best accuracy", "whole search", "energy to target"), rows),),
    )
    reached = tpe.energy_to_target_j
    outcome = LeverOutcome(
        lever="TPE search, to grid's accuracy",
        baseline=f"grid search ({trials} trials)",
        baseline_value=grid.total_energy_j,
        lever_value=reached if reached is not None else tpe.total_energy_j,
        accuracy_change_pp=None
        if tpe.best_accuracy is None or grid.best_accuracy is None
        else 100 * (tpe.best_accuracy - grid.best_accuracy),
        source=comparison.energy_source,
        note=(
            "energy until TPE reached the target"
            if reached < grid.total_energy_j
            else "TPE reached the target only after as much energy as the whole grid"
        )
        if reached is not None
        else "TPE never reached the target: its whole search is shown",
        spread="one search each (the same seed)",
    )
    return outcome, section
