"""Stopping rules. The whole contract is one method: ``check(context) -> reason | None``.

A run stops after the first epoch at which any of its rules returns a reason.

* :class:`TargetAccuracy` -- stop once validation accuracy reaches a target.
* :class:`LearningCurve` -- fit a saturating curve to validation accuracy and stop once the
  remaining planned epochs are predicted to gain less than a tolerance (with the fit's
  uncertainty).
* :class:`Plateau` -- stop once a validation metric has not improved for ``patience`` epochs.
* :class:`EnergyBudget` -- stop *before* an epoch that is predicted to take the run past
  its energy budget (J, kWh, or gCO2e at a given grid intensity).

:func:`parse_stop` reads the CLI forms: ``target:0.95``, ``plateau:5[:0.001]``,
``budget:2kJ``, ``budget:0.5Wh``, ``budget:3gCO2e@250``, ``curve[:0.005[:5]]``.
"""

from __future__ import annotations

import abc
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import (  # type: ignore[import-untyped,unused-ignore]
    OptimizeWarning,
    curve_fit,
)

from wattwise._errors import ConfigError
from wattwise._units import format_energy as format_joules
from wattwise.train._records import EnergyPrediction, EpochRecord

__all__ = [
    "CurveForecast",
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


def _saturating(t: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """The learning curve ``a - b * t**(-c)`` (an inverse power law): ``a`` the ceiling."""
    return a - b * t ** (-c)


@dataclass(frozen=True)
class CurveForecast:
    """What :class:`LearningCurve` predicts from the epochs so far.

    Attributes:
        epochs_fitted: epochs the curve was fitted to.
        fitted_now: the fitted accuracy at the last epoch (0..1).
        predicted_final: the fitted accuracy at the last planned epoch (0..1).
        gain: ``predicted_final - fitted_now``, in accuracy (0.01 = 1 pp).
        gain_sigma: one-sigma uncertainty of ``gain`` from the fit's parameter covariance.
        ceiling: the fitted ceiling ``a`` (accuracy after infinitely many epochs).
    """

    epochs_fitted: int
    fitted_now: float
    predicted_final: float
    gain: float
    gain_sigma: float
    ceiling: float


class LearningCurve(StopRule):
    """Stop when the rest of the planned run is predicted to gain less than ``tolerance``.

    After each epoch (from ``min_epochs`` on) the saturating inverse power law
    ``acc(t) = a - b * t**(-c)`` (the "pow3" learning curve of Domhan et al., IJCAI 2015;
    Viering & Loog, "The shape of learning curves", 2022) is fitted to the validation
    accuracy of every epoch so far (:func:`scipy.optimize.curve_fit`, least squares; the
    residuals set the noise, so a noisy curve gives a wide uncertainty rather than a
    confident wrong answer). The gain
    of the remaining epochs is ``acc(planned) - acc(now)`` of the fitted curve, and its
    uncertainty ``sigma`` comes from the parameters' covariance (delta method). The run
    stops when ``gain + z * sigma < tolerance``: with ``z = 1``, even the one-sigma
    optimistic gain is below the tolerance. A fit that fails or whose covariance cannot be
    estimated never stops the run. A curve that falls (over-fitting) predicts a negative
    gain, and stops it once the fall stands out of the noise. (An exponential
    ``a - b * exp(-c * t)`` was tried first: fitted to the fast rise of the first epochs it
    saw no tail, and stopped digits at epoch 6-7 with 6-10 pp lost; the power law's heavier
    tail keeps training through the slow climb.)

    Args:
        tolerance: the gain worth the remaining epochs, in accuracy (0.005 = 0.5 pp).
        min_epochs: never stop before this many epochs (>= 3: the curve has three
            parameters).
        z: standard deviations of the gain to add before comparing with the tolerance.
    """

    name = "curve"

    def __init__(self, tolerance: float = 0.005, min_epochs: int = 5, z: float = 1.0) -> None:
        if not 0.0 < tolerance < 1.0:
            raise ConfigError(f"a curve tolerance must be in (0, 1) accuracy, got {tolerance}")
        if min_epochs < 3:
            raise ConfigError(
                f"the curve needs min_epochs >= 3 (three parameters), got {min_epochs}"
            )
        if not 0.0 <= z < math.inf:
            raise ConfigError(f"z must be a finite number >= 0, got {z}")
        self.tolerance = tolerance
        self.min_epochs = min_epochs
        self.z = z

    def forecast(self, accuracies: Sequence[float], planned_epochs: int) -> CurveForecast | None:
        """Fit the curve to ``accuracies`` (epochs 1..n); None when the fit fails."""
        y = np.asarray(accuracies, dtype=float)
        n = len(y)
        if n < 3 or not np.all(np.isfinite(y)):
            return None
        t = np.arange(1, n + 1, dtype=float)
        top = float(y.max())
        p0 = (top, max(top - float(y[0]), 1e-3), 0.5)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", OptimizeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                params, cov = curve_fit(
                    _saturating,
                    t,
                    y,
                    p0=p0,
                    bounds=([0.0, -2.0, 0.01], [1.0, 2.0, 3.0]),
                    maxfev=2000,
                )
        except (RuntimeError, ValueError, OptimizeWarning):
            return None
        if not np.all(np.isfinite(cov)):
            return None
        a, b, c = (float(v) for v in params)

        def gain_of(a_: float, b_: float, c_: float) -> float:
            return float(_saturating(np.array([planned_epochs]), a_, b_, c_)[0]) - float(
                _saturating(np.array([n]), a_, b_, c_)[0]
            )

        # Delta method: gain = b * (n**-c - T**-c); d gain / d (a, b, c) (a cancels out).
        big_t = planned_epochs
        p_now, p_end = n ** (-c), big_t ** (-c)
        grad = np.array([0.0, p_now - p_end, b * (math.log(big_t) * p_end - math.log(n) * p_now)])
        var = float(grad @ cov @ grad)
        now = float(_saturating(np.array([n]), a, b, c)[0])
        return CurveForecast(
            epochs_fitted=n,
            fitted_now=now,
            predicted_final=now + gain_of(a, b, c),
            gain=gain_of(a, b, c),
            gain_sigma=math.sqrt(max(var, 0.0)),
            ceiling=a,
        )

    def check(self, context: StopContext) -> str | None:
        n = len(context.history)
        if n < self.min_epochs or n >= context.planned_epochs:
            return None
        f = self.forecast([e.val_accuracy for e in context.history], context.planned_epochs)
        if f is None:
            return None
        bound = f.gain + self.z * f.gain_sigma
        if bound >= self.tolerance:
            return None
        rest = context.planned_epochs - n
        return (
            f"curve: a power-law learning curve fitted to {n} epochs of validation accuracy "
            f"predicts {f.predicted_final:.4f} at epoch {context.planned_epochs} against "
            f"{f.fitted_now:.4f} now: the {rest} remaining epochs would gain "
            f"{100 * f.gain:+.2f} pp ± {100 * f.gain_sigma:.2f} pp "
            f"(1σ; up to {100 * bound:+.2f} pp at z={self.z:g}), "
            f"below the tolerance of {100 * self.tolerance:g} pp"
        )

    def __repr__(self) -> str:
        return (
            f"LearningCurve(tolerance={self.tolerance!r}, min_epochs={self.min_epochs}, "
            f"z={self.z!r})"
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
    * ``curve``, ``curve:0.005`` (or ``curve:0.5pp``), ``curve:0.005:8`` -- the tolerance on
      the predicted gain of the remaining epochs, and the fewest epochs before a stop

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
            tol = 0.005
            if parts:
                tol = float(parts[0][:-2]) / 100 if parts[0].endswith("pp") else float(parts[0])
            return LearningCurve(tol, int(parts[1]) if len(parts) > 1 else 5)
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
