"""The architecture study: models trained on the same work, their Pareto front and the
energy the cheapest good-enough model saves (del Rey et al.: architecture changes training
energy by up to ~80 % at almost no accuracy cost)."""

from __future__ import annotations

from collections.abc import Sequence

from wattwise._errors import ConfigError
from wattwise.protocol import LeverContext, study_session
from wattwise.protocol._stats import pareto_mask
from wattwise.studies._costs import count_costs
from wattwise.studies._method import (
    Budget,
    StudyMethod,
    TrainConfig,
    cheapest_within,
    method_notes,
    run_trials,
    versus,
)
from wattwise.studies._records import ArchitectureStudy, ModelResult
from wattwise.train import StopRule, resolve_device
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import build_model

__all__ = ["study_architectures"]


def study_architectures(
    models: Sequence[str],
    data: DataSplit,
    *,
    epochs: int = 10,
    stop: Sequence[StopRule] = (),
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: str = "adam",
    device: str = "auto",
    threads: int | None = None,
    within_pp: float = 1.0,
    method: StudyMethod | None = None,
    name: str | None = None,
    context: LeverContext | None = None,
) -> ArchitectureStudy:
    """Train each model under the same budget and stopping rules, repeated, and compare.

    Per model: parameters, FLOPs, energy, time and accuracy (medians and spread), energy
    per accuracy point and whether it is on the energy/accuracy Pareto front. The reference
    is the most accurate model; the headline is the cheapest model within ``within_pp``
    percentage points of its accuracy and the energy it saves against it, both measured in
    this study.

    Args:
        models: model specs (at least two, all different).
        data: the dataset.
        epochs: epochs planned for every model.
        stop: stopping rules shared by every model.
        batch_size: training batch size.
        lr: learning rate.
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        device: ``auto``, ``cpu``, ``cuda``...
        threads: PyTorch threads (None: as is).
        within_pp: accuracy tolerance of the headline, in percentage points.
        method: the measurement protocol (repeats, warm-up, cool-down, order) and test.
        name: the study's name.
        context: meters, store, scope and progress (default: detected meters, the default
            store, machine scope).

    Raises:
        ConfigError: bad arguments, or a model that cannot take the data.
    """
    method = method or StudyMethod()
    context = context or LeverContext()
    specs = [m.strip() for m in models if m.strip()]
    if len(specs) < 2:
        raise ConfigError("an architecture study needs at least two models")
    if len(set(specs)) != len(specs):
        raise ConfigError(f"a model is listed twice: {', '.join(specs)}")
    if epochs < 1 or batch_size < 1:
        raise ConfigError("epochs and batch size must be >= 1")
    if within_pp < 0:
        raise ConfigError(f"the accuracy tolerance must be >= 0 pp, got {within_pp}")
    dev = str(resolve_device(device))
    # Build every model once before training anything, so a bad spec fails at once.
    costs = {
        s: count_costs(
            build_model(s, input_shape=data.input_shape, num_classes=data.num_classes),
            data.input_shape,
        )
        for s in specs
    }
    budget = Budget(epochs, tuple(stop), lr, optimizer)
    settings = {**budget.to_dict(), "batch_size": batch_size, "device": dev, "threads": threads}
    configs = [TrainConfig(s, s, batch_size, dev, threads) for s in specs]
    study_name = name or f"architectures on {data.name}"
    with study_session(
        context,
        kind="architectures",
        name=study_name,
        params={
            "models": specs,
            "dataset": data.name,
            "within_pp": within_pp,
            **settings,
            "method": method.to_dict(context.scope),
        },
    ) as session:
        session.begin(len(configs) * method.repeats)
        runs = run_trials(session, method, configs, data, budget)
        ordered = [runs[s] for s in specs]
        reference = max(ordered, key=lambda r: (r.val_accuracy.median, -r.energy_j.median))
        front = pareto_mask(
            [r.energy_j.median for r in ordered], [r.val_accuracy.median for r in ordered]
        )
        results = tuple(
            ModelResult(
                model=s,
                params=costs[s].params,
                flops=costs[s].flops,
                train_flops=costs[s].train_flops,
                runs=r,
                pareto=on_front,
                versus=None if r is reference else versus(reference, r, method),
            )
            for s, r, on_front in zip(specs, ordered, front, strict=True)
        )
        study = ArchitectureStudy(
            study_id=session.study_id,
            name=study_name,
            dataset=data.name,
            settings=settings,
            method=method.to_dict(context.scope),
            models=results,
            reference=reference.label,
            saving=cheapest_within(reference, ordered, within_pp, method),
            notes=tuple(method_notes(method, context.scope, session.sources)),
            stored=session.stored,
        )
        session.finish(study.to_dict())
    return study
