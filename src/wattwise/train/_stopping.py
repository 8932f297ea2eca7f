"""Stopping rules. The whole contract is one method: ``check(context) -> reason | None``.

A run stops after the first epoch at which any of its rules returns a reason.

* :class:`TargetAccuracy` -- stop once validation accuracy reaches a target.
* :class:`LearningCurve` -- fit a learning curve to validation accuracy and stop once the
  model in hand is predicted to be within a tolerance of the planned run's final accuracy
  (with the fit's uncertainty).
* :class:`Plateau` -- stop once a validation metric has not improved for ``patience`` epochs.
* :class:`EnergyBudget` -- stop *before* an epoch that is predicted to take the run past
  its energy budget (J, kWh, or gCO2e at a given grid intensity).

:func:`parse_stop` reads the CLI forms: ``target:0.95``, ``plateau:5[:0.001]``,
``budget:2kJ``, ``budget:0.5Wh``, ``budget:3gCO2e@250``, ``curve[:0.01[:10]]``.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wattwise._errors import ConfigError
from wattwise._units import format_energy as format_joules
from wattwise.train._curve import CURVE_FAMILIES, FAMILY_NAMES, CurveForecast
from wattwise.train._curve import forecast as forecast_curve
from wattwise.train._records import EnergyPrediction, EpochRecord

__all__ = [
    "EnergyBudget",
    "LearningCurve",
    "Plateau",
    "StopContext",
    "StopRule",
    "TargetAccuracy",
    "format_joules",
    "parse_stop",
]

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class StopContext:
    """What a rule sees after an epoch.

    Attributes:
        history: the epochs so far, the last one just finished.
        planned_epochs: epochs planned for the run.
        spent_j: energy of the run so far (epochs and the work between them), in J.
        prediction: the planned run's total predicted from ``history``.
    """

    history: Sequence[EpochRecord]
    planned_epochs: int
    spent_j: float
    prediction: EnergyPrediction


class StopRule(abc.ABC):
    """A reason to end training early."""

    #: Short name, reported as the run's ``stop_rule``.
    name: str = "rule"

    @abc.abstractmethod
    def check(self, context: StopContext) -> str | None:
        """Return why to stop after the last epoch of ``context.history``, or None."""


class TargetAccuracy(StopRule):
    """Stop once the validation accuracy reaches ``target`` (0..1).

    Accuracy plateaus while energy keeps growing: knowing the accuracy that is good enough
    is the cheapest lever.
    """

    name = "target"

    def __init__(self, target: float) -> None:
        if not 0.0 < target <= 1.0:
            raise ConfigError(f"a target accuracy must be in (0, 1], got {target}")
        self.target = target

    def check(self, context: StopContext) -> str | None:
        acc = context.history[-1].val_accuracy
        if acc >= self.target:
            return f"target: validation accuracy {acc:.4f} reached the target {self.target:g}"
        return None

    def __repr__(self) -> str:
        return f"TargetAccuracy({self.target!r})"


class Plateau(StopRule):
    """Stop when a validation metric has not improved for ``patience`` epochs.

    An epoch improves on the best so far when it beats it by more than ``min_delta``
    (higher accuracy, or lower loss).

    Args:
        patience: epochs without improvement to wait (>= 1).
        min_delta: smallest change that counts as an improvement (accuracy: 0.001 = 0.1 pp).
        metric: ``val_accuracy`` (higher is better) or ``val_loss`` (lower is better).
    """

    name = "plateau"

    def __init__(
        self, patience: int = 5, min_delta: float = 0.001, metric: str = "val_accuracy"
    ) -> None:
        if patience < 1:
            raise ConfigError(f"plateau patience must be >= 1 epoch, got {patience}")
        if not 0 <= min_delta < math.inf:
            raise ConfigError(f"plateau min_delta must be a finite number >= 0, got {min_delta}")
        if metric not in ("val_accuracy", "val_loss"):
            raise ConfigError(f"plateau metric must be val_accuracy or val_loss, got {metric!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.metric = metric

    def check(self, context: StopContext) -> str | None:
        sign = 1.0 if self.metric == "val_accuracy" else -1.0
        best, best_epoch = -math.inf, 0
        for e in context.history:
            value = sign * getattr(e, self.metric)
            if value > best + self.min_delta:
                best, best_epoch = value, e.epoch
        since = context.history[-1].epoch - best_epoch
        if since >= self.patience:
            what = self.metric.replace("_", " ").replace("val", "validation")
            return (
                f"plateau: {what} has not improved by more than {self.min_delta:g} for "
                f"{since} epochs (best {sign * best:.4f} at epoch {best_epoch})"
            )
        return None

    def __repr__(self) -> str:
        return (
            f"Plateau(patience={self.patience}, min_delta={self.min_delta}, metric={self.metric!r})"
        )


class LearningCurve(StopRule):
    """Stop when the model in hand is predicted to be within ``tolerance`` of where the
    planned run would end.

    After each epoch (from ``min_epochs`` on) a learning curve is fitted to the validation
    accuracy of every epoch so far (:func:`wattwise.train.forecast_curve`: the power law,
    Morgan-Mercer-Flodin and Weibull families, the one that best predicted the last quarter
    of the epochs from the ones before chosen, refitted and extrapolated to the planned end).
    The **shortfall** is the predicted final accuracy minus the accuracy measured now: what
    stopping here gives up against the full run. The run stops when
    ``shortfall + z * sigma < tolerance``, sigma being the one-sigma uncertainty of the
    prediction (the fit's covariance, delta method; the residuals set the noise, so a
    noisy curve gives a wide sigma rather than a confident wrong answer). It does not stop
    while the chosen family under-predicted the last held-out epochs by more than
    ``guard * tolerance`` (the curve still climbs faster than the fit believes), nor when
    no family can be fitted. A curve that falls (over-fitting) predicts a negative
    shortfall and stops once the fall stands out of the noise.

    How the defaults were chosen (benchmarks/bench_train_stopping.py; docs/train.md): on
    20 digits-CNN and 20 mnist1d-CNN runs of 60 epochs (seeds 10-29, not the benchmark's
    seeds 0-4), replayed. The single power law (this rule before) stopped 1.4-1.8x later
    than the hindsight oracle; the power law's heavy tail runs MNIST-1D's ceiling into
    100 %. Comparing the fitted curve now (rather than the measured accuracy) with the
    final, or fitting one saturating family alone, lost 3-5 pp on the runs whose first
    epochs rose fast.

    Args:
        tolerance: the accuracy the model in hand may fall short of the planned run's
            predicted final accuracy (0.01 = 1 pp).
        min_epochs: never stop before this many epochs (>= 3).
        z: standard deviations of the prediction to add before comparing.
        guard: how far (in tolerances) the backtest may have under-predicted the latest
            epochs before the rule stops trusting the fit (inf: no guard).
        families: the curve families to choose from.
    """

    name = "curve"

    def __init__(
        self,
        tolerance: float = 0.01,
        min_epochs: int = 10,
        z: float = 1.0,
        *,
        guard: float = 0.5,
        families: Sequence[str] = CURVE_FAMILIES,
    ) -> None:
        if not 0.0 < tolerance < 1.0:
            raise ConfigError(f"a curve tolerance must be in (0, 1) accuracy, got {tolerance}")
        if min_epochs < 3:
            raise ConfigError(
                f"the curve needs min_epochs >= 3 (three parameters), got {min_epochs}"
            )
        if not 0.0 <= z < math.inf:
            raise ConfigError(f"z must be a finite number >= 0, got {z}")
        if not guard > 0.0:
            raise ConfigError(f"guard must be > 0 tolerances (inf: none), got {guard}")
        bad = [f for f in families if f not in CURVE_FAMILIES]
        if bad or not families:
            raise ConfigError(f"curve families must be among {', '.join(CURVE_FAMILIES)}")
        self.tolerance = tolerance
        self.min_epochs = min_epochs
        self.z = z
        self.guard = guard
        self.families = tuple(families)

    def forecast(self, accuracies: Sequence[float], planned_epochs: int) -> CurveForecast | None:
        """Fit the curve to ``accuracies`` (epochs 1..n); None when the fit fails."""
        return forecast_curve(accuracies, planned_epochs, families=self.families)

    def check(self, context: StopContext) -> str | None:
        n = len(context.history)
        if n < self.min_epochs or n >= context.planned_epochs:
            return None
        f = self.forecast([e.val_accuracy for e in context.history], context.planned_epochs)
        if f is None or f.backtest_bias > self.guard * self.tolerance:
            return None
        bound = f.shortfall + self.z * f.gain_sigma
        if bound >= self.tolerance:
            return None
        return (
            f"curve: a {FAMILY_NAMES[f.family]} learning curve fitted to {n} epochs of "
            "validation accuracy "
            f"predicts {f.predicted_final:.4f} at epoch {context.planned_epochs}; the model "
            f"now measures {f.measured_now:.4f}, {100 * f.shortfall:+.2f} pp "
            f"± {100 * f.gain_sigma:.2f} pp short (1σ; up to {100 * bound:+.2f} pp at "
            f"z={self.z:g}), below the tolerance of {100 * self.tolerance:g} pp"
        )

    def __repr__(self) -> str:
        return (
            f"LearningCurve(tolerance={self.tolerance!r}, min_epochs={self.min_epochs}, "
            f"z={self.z!r}, guard={self.guard!r}, families={self.families!r})"
        )


class EnergyBudget(StopRule):
    """Stop before the run would exceed an energy budget.

    After each epoch the next epoch's energy is predicted from the steady epochs (see
    :func:`wattwise.train.predict_total`); if what has been spent plus the next epoch's
    prediction at ``z`` standard deviations above its mean would exceed the budget, the run
    stops now. The first epoch always runs (there is nothing to predict from before it).

    Args:
        budget_j: the budget, in J.
        z: how many standard deviations of the next epoch's prediction to keep in reserve
            (2: about a 2.5 % chance that a stop-free epoch overshoots, if the spread holds).
        label: how to state the budget in the reason (default: in joules).
    """

    name = "budget"

    def __init__(self, budget_j: float, *, z: float = 2.0, label: str | None = None) -> None:
        if not 0 < budget_j < math.inf:
            raise ConfigError(f"an energy budget must be a finite number > 0 J, got {budget_j}")
        if z < 0:
            raise ConfigError(f"z must be >= 0, got {z}")
        self.budget_j = float(budget_j)
        self.z = z
        self.label = label or format_joules(self.budget_j)

    @classmethod
    def from_kwh(cls, budget_kwh: float, *, z: float = 2.0) -> EnergyBudget:
        """A budget in kWh."""
        return cls(budget_kwh * J_PER_KWH, z=z, label=f"{budget_kwh:g} kWh")

    @classmethod
    def from_emissions(
        cls, grams_co2e: float, *, intensity_g_per_kwh: float, z: float = 2.0
    ) -> EnergyBudget:
        """A budget in gCO2e, turned into energy at a grid intensity in gCO2e/kWh."""
        if not 0 < intensity_g_per_kwh <= _MAX_INTENSITY_G_PER_KWH:
            raise ConfigError(
                f"grid intensity {intensity_g_per_kwh:g} gCO2e/kWh is not plausible: grids lie "
                f"between 0 and {_MAX_INTENSITY_G_PER_KWH:g} gCO2e/kWh"
            )
        if not grams_co2e > 0:
            raise ConfigError(f"an emissions budget must be > 0 gCO2e, got {grams_co2e}")
        budget_j = grams_co2e / intensity_g_per_kwh * J_PER_KWH
        label = (
            f"{grams_co2e:g} gCO2e at {intensity_g_per_kwh:g} gCO2e/kWh "
            f"(= {format_joules(budget_j)})"
        )
        return cls(budget_j, z=z, label=label)

    def check(self, context: StopContext) -> str | None:
        spent = context.spent_j
        if spent >= self.budget_j:
            return (
                f"budget: {format_joules(spent)} spent by epoch {context.history[-1].epoch} "
                f"already exceeds the budget of {self.label} (the first epoch alone may)"
            )
        p = context.prediction
        if len(context.history) >= context.planned_epochs:
            return None
        reserve = p.epoch_mean_j + self.z * p.next_epoch_sigma_j
        if spent + reserve > self.budget_j:
            return (
                f"budget: the next epoch is predicted to need {format_joules(p.epoch_mean_j)} "
                f"± {format_joules(p.next_epoch_sigma_j)}, and {format_joules(spent)} are "
                f"spent: another epoch could exceed the budget of {self.label}"
            )
        return None

    def __repr__(self) -> str:
        return f"EnergyBudget({self.budget_j!r} J, z={self.z})"


#: Highest plausible grid intensity (coal alone: about 1,000-1,200). Units: gCO2e/kWh.
_MAX_INTENSITY_G_PER_KWH = 2000.0

_ENERGY_UNITS = {"j": 1.0, "kj": 1e3, "mj": 1e6, "wh": 3600.0, "kwh": J_PER_KWH}
_MASS_UNITS = {"g": 1.0, "gco2e": 1.0, "kg": 1e3, "kgco2e": 1e3}
_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z0-9]+)\s*(?:@\s*(.+))?$")


def parse_stop(spec: str, *, intensity_g_per_kwh: float | None = None) -> StopRule:
    """Read a stopping rule from its CLI form.

    * ``target:0.95`` (or ``target:95%``)
    * ``plateau``, ``plateau:5``, ``plateau:5:0.002`` -- patience in epochs, min delta
    * ``budget:2kJ``, ``budget:500J``, ``budget:0.5Wh``, ``budget:0.001kWh``
    * ``budget:3gCO2e`` with an intensity (argument, or ``budget:3gCO2e@250`` in gCO2e/kWh)
    * ``curve``, ``curve:0.005`` (or ``curve:0.5pp``), ``curve:0.005:8`` -- the accuracy the
      model in hand may fall short of the planned run's predicted final (default 1 pp), and
      the fewest epochs before a stop (default 10)

    Raises:
        ConfigError: the spec is not one of these (the message shows the forms).
    """
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    forms = (
        "use curve[:TOLERANCE[:MIN_EPOCHS]], target:0.95, plateau[:PATIENCE[:MIN_DELTA]] "
        "or budget:2kJ / 0.01kWh / 5gCO2e@300"
    )
    try:
        if kind == "target":
            text = arg.strip()
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            return TargetAccuracy(value)
        if kind == "plateau":
            parts = [p for p in arg.split(":") if p.strip()] if arg else []
            if len(parts) > 2:
                raise ValueError(arg)
            patience = int(parts[0]) if parts else 5
            min_delta = float(parts[1]) if len(parts) > 1 else 0.001
            return Plateau(patience, min_delta)
        if kind == "curve":
            parts = [p.strip() for p in arg.split(":") if p.strip()] if arg else []
            if len(parts) > 2:
                raise ValueError(arg)
            defaults = LearningCurve()
            tol = defaults.tolerance
            if parts:
                tol = float(parts[0][:-2]) / 100 if parts[0].endswith("pp") else float(parts[0])
            return LearningCurve(tol, int(parts[1]) if len(parts) > 1 else defaults.min_epochs)
        if kind == "budget":
            m = _BUDGET.match(arg.lower())
            if not m:
                raise ValueError(arg)
            value, unit, at = float(m.group(1)), m.group(2), m.group(3)
            if unit in _ENERGY_UNITS:
                if at is not None:
                    raise ValueError(arg)
                if unit == "kwh":
                    return EnergyBudget.from_kwh(value)
                return EnergyBudget(value * _ENERGY_UNITS[unit])
            if unit in _MASS_UNITS:
                intensity = float(at) if at is not None else intensity_g_per_kwh
                if intensity is None:
                    raise ConfigError(
                        f"the budget {arg!r} is in gCO2e: give the grid intensity in "
                        "gCO2e/kWh (budget:5gCO2e@300, or --intensity 300)"
                    )
                return EnergyBudget.from_emissions(
                    value * _MASS_UNITS[unit], intensity_g_per_kwh=intensity
                )
            raise ValueError(unit)
    except ValueError:
        raise ConfigError(f"bad --stop {spec!r}: {forms}") from None
    raise ConfigError(f"unknown stop rule {kind!r} in {spec!r}: {forms}")
