"""The demo's measurements: each lever and its baseline, run here, on bundled data.

The training levers (architectures, stopping, transfer) run on MNIST-1D, generated here,
where architecture matters and training does not converge in a few epochs, and so does the
search (the built-in 1-D CNN's search space); quantization uses a compute-bound wide MLP,
where int8 can pay; batching serves the 1-D CNN where requests queue.

Energies come from the meters detected on this machine, in process scope (other work on
the machine stays out). Every function returns what the lever's library call returned;
:mod:`wattwise.demo._sections` turns that into the closing table's row and a report section.
PyTorch runs on one thread throughout (:func:`one_thread`), restored afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from wattwise._records import CarbonFigures
from wattwise.demo._records import CarbonDay, DemoSettings, Step
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker

if TYPE_CHECKING:
    from wattwise.carbon import EmbodiedFigures, IntensityTrace, Location
    from wattwise.infer import BatchingResult, QuantizationResult
    from wattwise.search import Comparison
    from wattwise.studies import ArchitectureStudy
    from wattwise.train import FitResult

__all__ = [
    "CARBON_DEADLINE_HOURS",
    "CARBON_SUBMIT_HOUR_UTC",
    "CARBON_YEAR",
    "CARBON_ZONE",
    "CarbonScenario",
    "carbon_days",
    "measure_architectures",
    "measure_batching",
    "measure_carbon",
    "measure_quantization",
    "measure_search",
    "measure_stopping",
    "measure_transfer",
    "one_thread",
]

#: The carbon-timing scenario: a daily job submitted at the end of the working day and due
#: the next morning, on every day of the bundled 2020 trace of Germany (hours in UTC).
CARBON_ZONE = "DE"
CARBON_SUBMIT_HOUR_UTC = 17
CARBON_DEADLINE_HOURS = 16
CARBON_YEAR = 2020


@contextmanager
def one_thread() -> Iterator[None]:
    """Run PyTorch on one intra-op thread, then restore the number it had."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _context(settings: DemoSettings) -> LeverContext:
    """Where the demo's levers store their runs, and in which scope."""
    return LeverContext.of(store=settings.store, scope=settings.scope)


def _tracker(name: str, settings: DemoSettings) -> Tracker:
    return Tracker(name, scope=settings.scope, store=settings.store)


def measure_architectures(settings: DemoSettings, step: Step) -> ArchitectureStudy:
    """Models compared on the training workload, repeated: the study."""
    from wattwise.studies import StudyMethod, study_architectures
    from wattwise.workloads import load_dataset

    step(f"architectures: training each model on {settings.dataset_name}")
    data = load_dataset(settings.dataset)
    return study_architectures(
        list(settings.arch_models),
        data,
        epochs=settings.arch_epochs,
        lr=settings.lr,
        threads=1,
        within_pp=settings.within_pp,
        method=StudyMethod.of(repeats=settings.arch_repeats, warmup_batches=5),
        name=f"demo: architectures on {settings.dataset_name}",
        context=_context(settings),
    )


def measure_stopping(settings: DemoSettings, step: Step) -> dict[str, FitResult]:
    """The full planned run and the learning-curve rule, both trained here.

    Returns:
        Both fits by label.
    """
    import torch

    from wattwise.train import LearningCurve, fit
    from wattwise.workloads import build_model, load_dataset

    data = load_dataset(settings.dataset)
    results: dict[str, FitResult] = {}
    for label, rules in (("full planned run", ()), ("learning-curve rule", (LearningCurve(),))):
        step(f"stopping: {label} ({settings.full_epochs} epochs planned)")
        torch.manual_seed(0)
        model = build_model(
            settings.model, input_shape=data.input_shape, num_classes=data.num_classes
        )
        results[label] = fit(
            model,
            data,
            epochs=settings.full_epochs,
            lr=settings.lr,
            stop=list(rules),
            seed=0,
            device="cpu",
            tracker=_tracker(f"demo: {label}", settings),
        )
    return results


def measure_transfer(settings: DemoSettings, step: Step) -> dict[str, FitResult]:
    """A model for classes 0-7, then 0-9 from scratch and by extending it, to the target.

    Returns:
        The fits under ``pretrain``, ``scratch`` and ``transfer``.
    """
    import torch

    from wattwise.train import Plateau, TargetAccuracy, extend_head, fine_tune_lr_groups, fit
    from wattwise.workloads import build_model, load_dataset

    full = load_dataset(settings.dataset)
    first8 = load_dataset(settings.dataset, classes=tuple(range(8)))
    target = settings.target_accuracy
    what = settings.dataset_name
    step(f"transfer: the model one already has ({what} 0-7)")
    torch.manual_seed(0)
    base = build_model(settings.model, input_shape=first8.input_shape, num_classes=8)
    pre = fit(
        base,
        first8,
        epochs=settings.transfer_max_epochs,
        lr=settings.lr,
        stop=[Plateau()],
        seed=0,
        device="cpu",
        tracker=_tracker(f"demo: pre-trained model, {what} 0-7", settings),
    )
    step(f"transfer: training 0-9 from scratch to {target:.0%}")
    torch.manual_seed(0)
    scratch_model = build_model(settings.model, input_shape=full.input_shape, num_classes=10)
    scratch = fit(
        scratch_model,
        full,
        epochs=settings.transfer_max_epochs,
        lr=settings.lr,
        stop=[TargetAccuracy(target)],
        seed=0,
        device="cpu",
        tracker=_tracker(f"demo: {what} 0-9 from scratch", settings),
    )
    step(f"transfer: extending the 0-7 model to 0-9 and fine-tuning to {target:.0%}")
    extend_head(base, first8.class_names, full.class_names)
    tuned = fit(
        base,
        full,
        epochs=settings.transfer_max_epochs,
        lr=settings.lr,  # the backbone at the from-scratch rate, the head at 10x
        lr_groups=fine_tune_lr_groups(base, settings.lr),
        stop=[TargetAccuracy(target)],
        seed=0,
        device="cpu",
        tracker=_tracker(f"demo: {what} 0-9 by transfer", settings),
    )
    return {"pretrain": pre, "scratch": scratch, "transfer": tuned}


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


@dataclass(frozen=True)
class CarbonScenario:
    """The demo's emissions in two zones, and its daily job timed on the bundled trace.

    Attributes:
        energy_j: the demo's training energy, in J.
        job_hours: the daily job's length, in whole hours.
        de: Germany's location and annual mean intensity.
        fr: France's.
        emissions_de: the energy's emissions in Germany.
        emissions_fr: the energy's emissions in France.
        days: each planned day of the scenario.
        skipped: days left out for a gap in the trace.
        embodied: the training's share of this machine's manufacturing footprint (an
            estimate, shown beside the emissions and never added into them), or None.
    """

    energy_j: float
    job_hours: int
    de: Location
    fr: Location
    emissions_de: CarbonFigures
    emissions_fr: CarbonFigures
    days: tuple[CarbonDay, ...]
    skipped: tuple[datetime, ...]
    embodied: EmbodiedFigures | None = None


def measure_carbon(energy_j: float, duration_s: float, step: Step) -> CarbonScenario:
    """The emissions of ``energy_j`` in two zones, and carbon-aware timing of a daily job of
    that energy on the bundled 2020 trace (a fixed scenario: the same whatever the day)."""
    from wattwise.carbon import Hardware, embodied, emissions_for_energy, resolve_location

    step("carbon: emissions, and a daily job timed on the 2020 trace")
    de, fr = resolve_location("DE"), resolve_location("FR")
    job_hours = max(1, math.ceil(duration_s / 3600 - 1e-9))
    days, skipped = carbon_days(energy_j, job_hours)
    return CarbonScenario(
        energy_j,
        job_hours,
        de,
        fr,
        emissions_for_energy(energy_j, de),
        emissions_for_energy(energy_j, fr),
        tuple(days),
        tuple(skipped),
        embodied(Hardware.detect(), duration_s),  # the demo trains on the CPU: no GPU
    )


#: Batching is shown where it can pay: requests arrive fast enough that one request at a
#: time keeps the server about this busy (issue 14: batching pays when requests queue).
BATCHING_LOAD = 0.75


def measure_batching(settings: DemoSettings, step: Step) -> BatchingResult:
    """Dynamic batching against one request at a time, on the same request stream, at a load
    where requests queue: the rate is set from the measured batch-1 service time so that
    batch=1 keeps the server about ``BATCHING_LOAD`` busy; virtual clock, energy net of the
    idle power measured in the same run."""
    import torch

    from wattwise.infer import RequestStream, parse_policies
    from wattwise.infer import measure_batching as measure
    from wattwise.protocol import Protocol, measure_calls, tracking
    from wattwise.workloads import build_model

    torch.manual_seed(0)
    shape = (1, 40)
    model = build_model("cnn1d", input_shape=shape, num_classes=10).eval()
    one = torch.randn(1, *shape)

    def call() -> None:
        with torch.inference_mode():
            model(one)

    step("batching: timing one request at a time")
    timing = Protocol(repeats=1, warmup=5, min_time_s=0.3, min_calls=20)
    with tracking("demo: batch-1 service time", _context(settings).with_(store=False)) as t:
        service = measure_calls(call, tracker=t, window="batch=1", protocol=timing).s_per_call
    rate = round(BATCHING_LOAD / max(service, 1e-6))
    step(f"batching: serving cnn1d at {rate} requests/s (virtual clock)")
    return measure(
        model,
        input_shape=shape,
        policies=parse_policies("1,16,64", max_wait_s=(0.01,)),
        stream=RequestStream(float(rate), 200 if settings.quick else 400),
        slo_s=0.02,
        clock="virtual",
        model_name="cnn1d",
        context=_context(settings),
        idle_s=1.0 if settings.quick else 2.0,
    )


def measure_quantization(settings: DemoSettings, step: Step) -> QuantizationResult:
    """int8 against fp32 for a compute-bound model, trained briefly here, interleaved on the
    same inputs.

    The model is a wide MLP (``settings.quant_model``): its matrix products dominate each
    inference, which is where int8 kernels pay; on a small CNN the per-call overhead
    dominates and int8 cannot win (issue 14 measured both).
    """
    import torch

    from wattwise.infer import QUANTIZE_PROTOCOL
    from wattwise.infer import measure_quantization as measure
    from wattwise.train import fit
    from wattwise.workloads import build_model, load_dataset

    step(f"quantization: training {settings.quant_model} briefly, then fp32 against int8")
    data = load_dataset(settings.dataset)
    torch.manual_seed(0)
    model = build_model(
        settings.quant_model, input_shape=data.input_shape, num_classes=data.num_classes
    )
    fit(
        model,
        data,
        epochs=settings.quant_epochs,
        seed=0,
        device="cpu",
        tracker=_tracker(f"demo: {settings.quant_model} for quantization", settings),
    )
    model.eval()
    val = data.val
    xs = torch.stack([val[i][0] for i in range(len(val))])  # type: ignore[arg-type]
    ys = torch.tensor([int(val[i][1]) for i in range(len(val))])  # type: ignore[arg-type]
    cal = torch.stack([data.train[i][0] for i in range(256)])
    return measure(
        model,
        val=(xs, ys),
        calibration=cal,
        protocol=replace(
            QUANTIZE_PROTOCOL,
            repeats=2 if settings.quick else 3,
            min_time_s=0.5 if settings.quick else 1.0,
        ),
        model_name=settings.quant_model,
        dataset=settings.dataset,
        context=_context(settings),
    )


def measure_search(settings: DemoSettings, step: Step) -> Comparison:
    """Bayesian search (TPE) against grid search in the 1-D CNN's built-in space, on the
    demo's workload."""
    import optuna

    from wattwise.search import Workload, compare_strategies

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    trials = 8 if settings.quick else 16
    step(f"search: grid and TPE, {trials} trials each")
    return compare_strategies(
        Workload(dataset=settings.dataset, model="cnn1d"),
        strategies="grid,tpe",
        trials=trials,
        name="demo: grid against TPE",
        context=_context(settings),
    )
