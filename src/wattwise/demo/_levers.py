"""The levers the demo shows, each measured against its baseline in the same run.

Every lever returns a :class:`LeverOutcome` (one row of the closing table) and a report
:class:`~wattwise.report.Section`. Energies come from the meters detected on this machine,
in process scope (other work on the machine stays out); every figure carries its source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from wattwise._units import format_energy as fmt_j
from wattwise.report import Figure, Section, Table
from wattwise.report import _plots as plots
from wattwise.tracking._tracker import Tracker

if TYPE_CHECKING:
    from wattwise.carbon import IntensityTrace

__all__ = ["CarbonDay", "DemoSettings", "LeverOutcome", "Step", "carbon_days"]

#: Reports progress: (what is happening, fraction of the demo done).
Step = Callable[[str], None]


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo's workloads are.

    Attributes:
        quick: the short variant.
        arch_models: models compared in the architecture study.
        arch_epochs: epochs per model there.
        arch_repeats: repeats per model there.
        full_epochs: the planned run the stopping rules are measured against.
        transfer_max_epochs: epoch cap of the transfer runs (they stop at the target).
        target_accuracy: the validation accuracy the transfer runs aim at.
        within_pp: accuracy tolerance of the architecture headline, in points.
        scope: tracking scope of every run.
        store: where runs go (None: the default store; False: nowhere).
        clock: the current time (UTC); only the report's date comes from it: no figure
            depends on the day the demo is run.
    """

    quick: bool
    arch_models: tuple[str, ...]
    arch_epochs: int
    arch_repeats: int
    full_epochs: int
    transfer_max_epochs: int
    target_accuracy: float
    within_pp: float
    scope: str
    store: Any
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), compare=False)

    @classmethod
    def make(
        cls, *, quick: bool, store: Any, clock: Callable[[], datetime] | None = None
    ) -> DemoSettings:
        """The demo's settings; ``quick`` keeps it well under two minutes on 2 cores."""
        models = ("mlp:depth=0", "mlp", "cnn", "cnn:depth=3,width=32")
        sized = (8, 1) if quick else (15, 3)
        settings = cls(quick, models, *sized, 40, 40, 0.95, 2.0, "process", store)
        return settings if clock is None else replace(settings, clock=clock)


@dataclass(frozen=True)
class LeverOutcome:
    """One lever's saving, both sides measured in this run.

    Attributes:
        lever: what was done.
        baseline: what it is compared with.
        baseline_energy_j: energy of the baseline, in J (or gCO2e for the carbon lever).
        lever_energy_j: energy with the lever, same units.
        accuracy_change_pp: validation accuracy with the lever minus the baseline's, in
            percentage points (None where accuracy does not apply).
        source: provenance of the figures.
        units: ``J`` or ``gCO2e``.
        note: one line of context.
    """

    lever: str
    baseline: str
    baseline_energy_j: float
    lever_energy_j: float
    accuracy_change_pp: float | None
    source: str
    units: str = "J"
    note: str = ""

    @property
    def saving_frac(self) -> float:
        """Fraction of the baseline saved (negative: the lever cost more)."""
        if self.baseline_energy_j <= 0:
            return 0.0
        return 1.0 - self.lever_energy_j / self.baseline_energy_j

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "lever": self.lever,
            "baseline": self.baseline,
            "baseline_value": self.baseline_energy_j,
            "lever_value": self.lever_energy_j,
            "units": self.units,
            "saving_frac": self.saving_frac,
            "accuracy_change_pp": self.accuracy_change_pp,
            "source": self.source,
            "note": self.note,
        }


def _tracker(name: str, settings: DemoSettings) -> Tracker:
    return Tracker(name, scope=settings.scope, store=settings.store)


def architectures(settings: DemoSettings, step: Step) -> tuple[LeverOutcome, Section, Any]:
    """Models compared on digits: the Pareto front and the cheapest model near the best."""
    from wattwise.studies import StudyMethod, study_architectures
    from wattwise.workloads import load_dataset

    step("architectures: training each model on digits")
    data = load_dataset("digits")
    study = study_architectures(
        list(settings.arch_models),
        data,
        epochs=settings.arch_epochs,
        threads=1,
        within_pp=settings.within_pp,
        method=StudyMethod(repeats=settings.arch_repeats, warmup_batches=5, scope=settings.scope),
        name="demo: architectures on digits",
        store=settings.store,
    )
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
            f"{len(study.models)} models trained on digits for {settings.arch_epochs} epochs "
            f"each, {settings.arch_repeats} repeat(s), medians shown; energy "
            f"{saving.energy_source}.",
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
        baseline_energy_j=saving.reference_energy_j,
        lever_energy_j=saving.choice_energy_j,
        accuracy_change_pp=saving.accuracy_change_pp,
        source=saving.energy_source,
        note=f"cheapest model within {settings.within_pp:g} pp of the best"
        if saving.choice != saving.reference
        else f"the most accurate model is also the cheapest within {settings.within_pp:g} pp: "
        "nothing cheaper to pick",
    )
    return outcome, section, study


def stopping(settings: DemoSettings, step: Step) -> tuple[LeverOutcome, Section, Any]:
    """The default plateau rule against the full planned run, both trained here."""
    import torch

    from wattwise.train import Plateau, fit
    from wattwise.workloads import build_model, load_dataset

    data = load_dataset("digits")
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for label, rules in (("full planned run", ()), ("plateau rule", (Plateau(),))):
        step(f"stopping: {label} ({settings.full_epochs} epochs planned)")
        torch.manual_seed(0)
        model = build_model("cnn", input_shape=data.input_shape, num_classes=data.num_classes)
        models[label] = model
        results[label] = fit(
            model,
            data,
            epochs=settings.full_epochs,
            stop=list(rules),
            seed=0,
            device="cpu",
            tracker=_tracker(f"demo: {label}", settings),
        )
    full, stopped = results["full planned run"], results["plateau rule"]
    acc_full = full.final_val_accuracy or 0.0
    acc_stop = stopped.final_val_accuracy or 0.0
    why = stopped.stop.reason if stopped.stop is not None else "ran every planned epoch"
    section = Section(
        "Stopping when accuracy plateaus",
        (
            f"The small CNN on digits, {settings.full_epochs} epochs planned. The full run "
            f"used {fmt_j(full.total_energy_j)} for {acc_full:.3f} validation accuracy; the "
            f"default plateau rule stopped after {len(stopped.epochs)} epochs ({why}) using "
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
        lever="stop at a plateau",
        baseline=f"full planned run ({settings.full_epochs} epochs)",
        baseline_energy_j=full.total_energy_j,
        lever_energy_j=stopped.total_energy_j,
        accuracy_change_pp=100 * (acc_stop - acc_full),
        source=full.energy_source,
        note=f"stopped after {len(stopped.epochs)} of {settings.full_epochs} epochs"
        if stopped.stop is not None
        else "the plateau rule never fired: every planned epoch ran",
    )
    # The fully trained CNN goes on to the quantization step.
    return outcome, section, (results, models["full planned run"])


def transfer(settings: DemoSettings, step: Step) -> tuple[LeverOutcome, Section, Any]:
    """New classes by extending a trained model, against training from scratch."""
    import torch

    from wattwise.train import Plateau, TargetAccuracy, extend_head, fit
    from wattwise.workloads import build_model, load_dataset

    torch.set_num_threads(1)
    full = load_dataset("digits")
    first8 = load_dataset("digits", classes=tuple(range(8)))
    target = settings.target_accuracy
    step("transfer: the model one already has (digits 0-7)")
    torch.manual_seed(0)
    base = build_model("cnn", input_shape=first8.input_shape, num_classes=8)
    pre = fit(
        base,
        first8,
        epochs=settings.transfer_max_epochs,
        stop=[Plateau()],
        seed=0,
        device="cpu",
        tracker=_tracker("demo: pre-trained model, digits 0-7", settings),
    )
    step(f"transfer: training 0-9 from scratch to {target:.0%}")
    torch.manual_seed(0)
    scratch_model = build_model("cnn", input_shape=full.input_shape, num_classes=10)
    scratch = fit(
        scratch_model,
        full,
        epochs=settings.transfer_max_epochs,
        stop=[TargetAccuracy(target)],
        seed=0,
        device="cpu",
        tracker=_tracker("demo: digits 0-9 from scratch", settings),
    )
    step(f"transfer: extending the 0-7 model to 0-9 and fine-tuning to {target:.0%}")
    extend_head(base, first8.class_names, full.class_names)
    tuned = fit(
        base,
        full,
        epochs=settings.transfer_max_epochs,
        lr=1e-4,
        lr_groups={"head.*": 1e-3},
        stop=[TargetAccuracy(target)],
        seed=0,
        device="cpu",
        tracker=_tracker("demo: digits 0-9 by transfer", settings),
    )

    def reached(r: Any) -> str:
        acc = r.final_val_accuracy or 0.0
        return f"{acc:.3f} ({'reached' if acc >= target else 'not reached'})"

    rows = (
        (
            "pre-training on 0-7 (already done)",
            str(len(pre.epochs)),
            fmt_j(pre.total_energy_j),
            f"{pre.final_val_accuracy or 0:.3f} on 0-7",
        ),
        (
            "0-9 from scratch",
            str(len(scratch.epochs)),
            fmt_j(scratch.total_energy_j),
            reached(scratch),
        ),
        (
            "0-9 by extending the 0-7 model",
            str(len(tuned.epochs)),
            fmt_j(tuned.total_energy_j),
            reached(tuned),
        ),
    )
    section = Section(
        "Transfer learning for new classes",
        (
            f"As sAIn does for new gestures: a model trained on digits 0-7 gets two new output "
            f"rows (the eight learned rows kept) and is fine-tuned on 0-9 until {target:.0%} "
            f"validation accuracy, against training 0-9 from scratch to the same target. "
            f"Energy {scratch.energy_source}.",
        ),
        (Table(("run", "epochs", "energy", "final val acc"), rows),),
    )
    outcome = LeverOutcome(
        lever="transfer learning (extend the head)",
        baseline=f"0-9 from scratch to {target:.0%}",
        baseline_energy_j=scratch.total_energy_j,
        lever_energy_j=tuned.total_energy_j,
        accuracy_change_pp=100
        * ((tuned.final_val_accuracy or 0) - (scratch.final_val_accuracy or 0)),
        source=scratch.energy_source,
        note=f"pre-training on 0-7 cost {fmt_j(pre.total_energy_j)} more, once"
        if tuned.total_energy_j < scratch.total_energy_j
        else f"fine-tuning needed {len(tuned.epochs)} epochs, from scratch "
        f"{len(scratch.epochs)}: no saving here",
    )
    return outcome, section, {"pretrain": pre, "scratch": scratch, "transfer": tuned}


#: The carbon-timing scenario: a daily job submitted at the end of the working day and due
#: the next morning, on every day of the bundled 2020 trace of Germany (hours in UTC).
CARBON_ZONE = "DE"
CARBON_SUBMIT_HOUR_UTC = 17
CARBON_DEADLINE_HOURS = 16
CARBON_YEAR = 2020


@dataclass(frozen=True)
class CarbonDay:
    """One day of the carbon-timing scenario.

    Attributes:
        submitted: when the job was submitted (UTC); the baseline starts it then.
        best_start: the lowest-emission start before the deadline (UTC).
        baseline_g: emissions of starting at once, in gCO2e.
        best_g: emissions of the best start, in gCO2e.
    """

    submitted: datetime
    best_start: datetime
    baseline_g: float
    best_g: float

    @property
    def saving_frac(self) -> float:
        """Fraction of the baseline's emissions saved."""
        return 1.0 - self.best_g / self.baseline_g if self.baseline_g > 0 else 0.0


def _complete(trace: IntensityTrace, start_s: float, end_s: float) -> bool:
    """Whether the trace has a value for every one of its steps in [start, end): no gap."""
    return not trace.gaps_between(start_s, end_s)


def carbon_days(energy_j: float, job_hours: int) -> tuple[list[CarbonDay], list[datetime]]:
    """The scenario on every day of the trace: each day's baseline and best start.

    Returns:
        The days planned, and the days skipped because the trace has a gap in their window.
    """
    from wattwise._errors import ConfigError
    from wattwise.carbon import bundled_trace, schedule_job

    trace = bundled_trace(CARBON_ZONE)
    window = timedelta(hours=CARBON_DEADLINE_HOURS)
    first = datetime(CARBON_YEAR, 1, 1, CARBON_SUBMIT_HOUR_UTC, tzinfo=UTC)
    days: list[CarbonDay] = []
    skipped: list[datetime] = []
    submitted = first
    while submitted + window <= trace.end:
        due = submitted + window
        try:
            if not _complete(trace, submitted.timestamp(), due.timestamp()):
                raise ConfigError("gap")
            plan = schedule_job(
                [trace],
                start=submitted,
                deadline=due,
                duration_s=job_hours * 3600.0,
                energy_j=energy_j,
            )
        except ConfigError:  # a gap in the trace: that day is left out, and said so
            skipped.append(submitted)
        else:
            days.append(
                CarbonDay(
                    submitted,
                    plan.best.start,
                    plan.baseline.baseline_emissions,
                    plan.best.emissions,
                )
            )
        submitted += timedelta(days=1)
    return days, skipped


def carbon(
    settings: DemoSettings, energy_j: float, duration_s: float, step: Step
) -> tuple[LeverOutcome, Section, Any]:
    """The demo's emissions in two zones, and carbon-aware timing of a daily job on the
    bundled 2020 trace (a fixed scenario: the same answer whatever the day it is run)."""
    import numpy as np

    from wattwise.carbon import emissions_for_energy, resolve_location

    step("carbon: emissions, and a daily job timed on the 2020 trace")
    de, fr = resolve_location("DE"), resolve_location("FR")
    e_de = emissions_for_energy(energy_j, de)
    e_fr = emissions_for_energy(energy_j, fr)
    job_hours = max(1, math.ceil(duration_s / 3600 - 1e-9))
    days, skipped = carbon_days(energy_j, job_hours)
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
        ),
        (Table(("zone", "gCO2e/kWh", "source", "emissions (g)"), rows),),
    )
    outcome = LeverOutcome(
        lever=f"start at the cleanest hour by {due} (per day: median {median:.0%}, "
        f"IQR {q25:.0%}-{q75:.0%})",
        baseline=f"start at {submit}: a daily job, {len(days)} days of the {CARBON_YEAR} "
        f"{CARBON_ZONE} trace",
        baseline_energy_j=baseline_g,
        lever_energy_j=best_g,
        accuracy_change_pp=None,
        source=f"{CARBON_YEAR} hourly intensity trace of {CARBON_ZONE} (Wiesner et al. 2021)",
        units="gCO2e",
        note=f"same energy every day, shifted within a {CARBON_DEADLINE_HOURS} h deadline; "
        "emissions summed over the year",
    )
    return outcome, section, days


def batching(settings: DemoSettings, step: Step) -> tuple[LeverOutcome, Section, Any]:
    """Dynamic batching against one request at a time, same request stream, real time."""
    import torch

    from wattwise.infer import RequestStream, measure_batching, parse_policies
    from wattwise.protocol import LeverContext
    from wattwise.workloads import build_model

    step("batching: serving mobilenet_v3_small at 16 requests/s")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("mobilenet_v3_small", input_shape=(3, 224, 224), num_classes=1000)
    requests = 48 if settings.quick else 160
    result = measure_batching(
        model,
        input_shape=(3, 224, 224),
        policies=parse_policies("1,16", max_wait_s=(0.25,)),
        stream=RequestStream(16.0, requests),
        slo_s=0.5,
        model_name="mobilenet_v3_small",
        context=LeverContext.of(store=settings.store, scope=settings.scope),
    )
    by_name = {p.policy: p for p in result.policies}
    one = next(p for p in result.policies if p.max_batch_size == 1)
    best = by_name.get(result.best or "", one)
    rows = tuple(
        (
            p.policy,
            fmt_j(p.j_per_request),
            f"{p.p95_latency_s * 1e3:.0f} ms",
            f"{p.requests / p.batches:.1f}" if p.batches else "–",
        )
        for p in result.policies
    )
    section = Section(
        "Batching requests",
        (
            f"{requests} requests at 16 req/s (±20 % jitter, as Yarally used) served in real time "
            "by mobilenet_v3_small with random weights, once per policy; the tuner picks the "
            f"lowest energy per request with p95 latency under 500 ms: {result.best} "
            f"({result.best_reason}). Energy {result.source}.",
        ),
        (Table(("policy", "energy per request", "p95 latency", "mean batch"), rows),),
    )
    outcome = LeverOutcome(
        lever=f"batching ({best.policy})",
        baseline="one request at a time",
        baseline_energy_j=one.j_per_request,
        lever_energy_j=best.j_per_request,
        accuracy_change_pp=None,
        source=result.source,
        note=f"J per request; p95 {best.p95_latency_s * 1e3:.0f} ms against "
        f"{one.p95_latency_s * 1e3:.0f} ms"
        if best is not one
        else f"the tuner kept one request at a time ({result.best_reason})",
    )
    return outcome, section, result


def quantization(
    model: Any, settings: DemoSettings, step: Step
) -> tuple[LeverOutcome, Section, Any]:
    """int8 against fp32 for a trained digits CNN, interleaved on the same inputs."""
    import torch

    from wattwise.infer import QUANTIZE_PROTOCOL, measure_quantization
    from wattwise.protocol import LeverContext
    from wattwise.workloads import load_dataset

    step("quantization: the trained CNN in fp32 and int8")
    torch.set_num_threads(1)
    data = load_dataset("digits")
    val = data.val
    xs = torch.stack([val[i][0] for i in range(len(val))])  # type: ignore[arg-type]
    ys = torch.tensor([int(val[i][1]) for i in range(len(val))])  # type: ignore[arg-type]
    cal = torch.stack([data.train[i][0] for i in range(256)])
    result = measure_quantization(
        model,
        val=(xs, ys),
        calibration=cal,
        protocol=replace(
            QUANTIZE_PROTOCOL,
            repeats=2 if settings.quick else 3,
            min_time_s=0.5 if settings.quick else 1.0,
        ),
        model_name="cnn",
        dataset="digits",
        context=LeverContext.of(store=settings.store, scope=settings.scope),
    )
    fp32 = result.variant("fp32")
    int8 = [v for v in result.variants if v.variant != "fp32"]
    rows = tuple(
        (
            v.variant,
            fmt_j(v.j_per_inference),
            f"{v.latency_s * 1e3:.3f} ms",
            f"{v.size_bytes:,}",
            f"{v.accuracy:.3f}",
        )
        for v in result.variants
    )
    paragraphs = [
        "The small CNN trained in the stopping step, quantized to int8 (torchao PT2E) and "
        f"measured against fp32 on the digits validation set, interleaved. Energy "
        f"{result.source}.",
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
            fp32.j_per_inference,
            fp32.j_per_inference,
            None,
            result.source,
            note="no int8 variant could be made here",
        )
        return outcome, section, result
    best = min(int8, key=lambda v: v.j_per_inference)
    outcome = LeverOutcome(
        lever=f"int8 ({best.variant})",
        baseline="fp32",
        baseline_energy_j=fp32.j_per_inference,
        lever_energy_j=best.j_per_inference,
        accuracy_change_pp=100 * (best.accuracy - fp32.accuracy),
        source=result.source,
        note="J per inference; the int8 variant with the lowest energy"
        if best.j_per_inference < fp32.j_per_inference
        else f"int8 cost as much as fp32 or more on this CPU (kernels: {best.kernels})",
    )
    return outcome, section, result


def search(settings: DemoSettings, step: Step) -> tuple[LeverOutcome, Section, Any]:
    """Bayesian search (TPE) against grid search: energy to reach grid's accuracy."""
    import optuna
    import torch

    from wattwise.protocol import LeverContext
    from wattwise.search import Workload, compare_strategies

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    torch.set_num_threads(1)
    trials = 8 if settings.quick else 16
    step(f"search: grid and TPE, {trials} trials each")
    comparison = compare_strategies(
        Workload(dataset="digits", model="cnn"),
        strategies="grid,tpe",
        trials=trials,
        name="demo: grid against TPE",
        context=LeverContext.of(store=settings.store, scope=settings.scope),
    )
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
            f"The same space (the built-in CNN's) and {trials} trials for grid search and for "
            f"TPE (Bayesian). The target is {target:.4f} ({comparison.target_source}); energy "
            f"to target counts every trial up to the first that reached it. Energy "
            f"{comparison.energy_source}.",
            *comparison.notes,
        ),
        (Table(("strategy", "best accuracy", "whole search", "energy to target"), rows),),
    )
    reached = tpe.energy_to_target_j
    outcome = LeverOutcome(
        lever="TPE search, to grid's accuracy",
        baseline=f"grid search ({trials} trials)",
        baseline_energy_j=grid.total_energy_j,
        lever_energy_j=reached if reached is not None else tpe.total_energy_j,
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
    )
    return outcome, section, comparison
