"""The demo's settings and records: a lever's outcome (a value with its unit), a carbon day."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from wattwise._records.base import Record
from wattwise.protocol import StoreArg

__all__ = ["CarbonDay", "DemoSettings", "LeverOutcome", "Step", "Unit"]

#: Reports progress: what is happening.
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
    store: StoreArg
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
    """

    lever: str
    baseline: str
    baseline_value: float
    lever_value: float
    accuracy_change_pp: float | None
    source: str
    unit: Unit = Unit.J
    note: str = ""

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
