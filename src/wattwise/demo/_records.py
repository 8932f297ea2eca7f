"""The demo's settings and records: a lever's outcome (a value with its unit), a carbon day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from wattwise._records.base import Record
from wattwise.protocol import StoreArg

__all__ = ["CarbonDay", "DemoSettings", "Headline", "LeverOutcome", "Step", "Unit"]

#: Reports progress: what is happening.
Step = Callable[[str], None]


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo's workloads are.

    Attributes:
        quick: the short variant.
        dataset: the training workload (a :func:`~wattwise.workloads.load_dataset` spec).
        model: the model of the stopping and transfer runs.
        lr: learning rate of the training runs on ``dataset`` (the fine-tuning of the
            transfer run uses a tenth of it for the backbone).
        arch_models: models compared in the architecture study.
        arch_epochs: epochs per model there.
        arch_repeats: repeats per model there.
        full_epochs: the planned run the stopping rules are measured against.
        transfer_max_epochs: epoch cap of the transfer runs (they stop at the target).
        target_accuracy: the validation accuracy the transfer runs aim at.
        within_pp: accuracy tolerance of the architecture headline, in points.
        quant_model: the model quantized: compute-bound, so that int8 can pay.
        quant_epochs: epochs it is trained for before quantizing (briefly: only its
            accuracy before and after int8 matters, not how high it is).
        scope: tracking scope of every run.
        store: where runs go (None: the default store; False: nowhere).
        clock: the current time (UTC); only the report's date comes from it: no figure
            depends on the day the demo is run.
    """

    quick: bool
    dataset: str
    model: str
    lr: float
    arch_models: tuple[str, ...]
    arch_epochs: int
    arch_repeats: int
    full_epochs: int
    transfer_max_epochs: int
    target_accuracy: float
    within_pp: float
    quant_model: str
    quant_epochs: int
    scope: str
    store: StoreArg
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), compare=False)

    @classmethod
    def make(
        cls, *, quick: bool, store: Any, clock: Callable[[], datetime] | None = None
    ) -> DemoSettings:
        """The demo's settings; ``quick`` keeps it under two minutes on 2 cores.

        The training workload is MNIST-1D, where architecture matters (a 1-D CNN beats an
        MLP by 20 points); the quick variant trains on half of it, for fewer epochs.
        """
        # The GRU is left out: on this CPU it trains several times slower per epoch than
        # the CNN and ends less accurate (docs/train.md has its figure).
        models = ("mlp:depth=0", "mlp", "cnn1d:width=8", "cnn1d")
        settings = cls(
            quick=quick,
            dataset="mnist1d:train=2000,val=500" if quick else "mnist1d",
            model="cnn1d",
            lr=3e-3,  # the CNN converges within the planned epochs (1e-3 still climbs)
            arch_models=models,
            arch_epochs=8 if quick else 15,
            arch_repeats=1 if quick else 3,
            full_epochs=20 if quick else 40,
            transfer_max_epochs=20 if quick else 40,
            target_accuracy=0.80 if quick else 0.85,
            within_pp=2.0,
            quant_model="mlp:depth=3,width=1024",
            quant_epochs=2,
            scope="process",
            store=store,
        )
        return settings if clock is None else replace(settings, clock=clock)

    @property
    def dataset_name(self) -> str:
        """The dataset's name without its options (``mnist1d``)."""
        return self.dataset.partition(":")[0]


class Unit(StrEnum):
    """The unit of a lever's figures."""

    J = "J"
    G_CO2E = "gCO2e"


@dataclass(frozen=True)
class LeverOutcome(Record):
    """One lever's saving, both sides measured in this run.

    Attributes:
        lever: what was done.
        baseline: what it is compared with.
        baseline_value: the baseline's figure, in ``unit``.
        lever_value: the figure with the lever, in ``unit``.
        accuracy_change_pp: validation accuracy with the lever minus the baseline's, in
            percentage points (None where accuracy does not apply).
        source: provenance of the figures.
        unit: energy in J, or emissions in gCO2e (the carbon lever).
        note: one line of context.
        spread: how often each side was measured and how much it varied (``one run
            each`` where it was not repeated).
        applied: whether the lever changed what ran (False: a stopping rule that never
            fired; both sides did the same work, so their difference is measurement noise
            and the lever counts as saving 0 in the headline).
        group: ``training`` or ``inference`` energy (the headline's two figures), or
            ``emissions``.
    """

    lever: str
    baseline: str
    baseline_value: float
    lever_value: float
    accuracy_change_pp: float | None
    source: str
    unit: Unit = Unit.J
    note: str = ""
    spread: str = ""
    group: str = "training"
    applied: bool = True

    derived: ClassVar[tuple[str, ...]] = ("saving_frac",)

    @property
    def saving_frac(self) -> float:
        """Fraction of the baseline saved (negative: the lever cost more)."""
        if self.baseline_value <= 0:
            return 0.0
        return 1.0 - self.lever_value / self.baseline_value


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


@dataclass(frozen=True)
class Headline(Record):
    """The demo's first line: what the training and the inference levers cut, measured.

    Each figure is the mean of its levers' savings, every lever against its own baseline
    measured in the same run (equal weight per lever: the levers act on different models,
    whose joules do not add up to one workload); a lever that was not applied counts as 0.

    Attributes:
        training_saving_frac: mean saving of the training-energy levers (0..1; negative:
            they cost more).
        inference_saving_frac: mean saving of the inference-energy levers.
        emissions_saving_frac: the carbon-timing lever's saving of emissions.
        training_levers: the levers averaged for the first figure.
        inference_levers: those averaged for the second.
        dataset: the training workload.
    """

    training_saving_frac: float
    inference_saving_frac: float
    emissions_saving_frac: float | None
    training_levers: tuple[str, ...]
    inference_levers: tuple[str, ...]
    dataset: str

    derived: ClassVar[tuple[str, ...]] = ("text", "definition")

    @classmethod
    def of(cls, levers: tuple[LeverOutcome, ...], dataset: str) -> Headline:
        """The headline of these levers' rows."""

        def group(name: str) -> list[LeverOutcome]:
            return [o for o in levers if o.group == name]

        def mean(rows: list[LeverOutcome]) -> float:
            return sum(o.saving_frac if o.applied else 0.0 for o in rows) / max(1, len(rows))

        training, inference, carbon = group("training"), group("inference"), group("emissions")
        return cls(
            mean(training),
            mean(inference),
            mean(carbon) if carbon else None,
            tuple(o.lever for o in training),
            tuple(o.lever for o in inference),
            dataset,
        )

    @property
    def text(self) -> str:
        """The headline sentence."""
        out = (
            f"On this workload ({self.dataset}) the levers cut training energy by "
            f"{self.training_saving_frac:.0%} and inference energy by "
            f"{self.inference_saving_frac:.0%}, all measured here"
        )
        if self.emissions_saving_frac is not None:
            out += f"; timing the daily job cuts its emissions by {self.emissions_saving_frac:.0%}"
        return out + "."

    @property
    def definition(self) -> str:
        """How the two figures are made."""
        return (
            f"Training: the mean saving of {len(self.training_levers)} levers "
            f"({'; '.join(self.training_levers)}); inference: the mean of "
            f"{len(self.inference_levers)} ({'; '.join(self.inference_levers)}). Each lever "
            "is measured against its own baseline in this run (table below); the mean "
            "weighs every lever alike, because they act on different models whose joules "
            "do not add up to one workload. A lever that changed nothing (a rule that never "
            "fired) counts as 0."
        )
