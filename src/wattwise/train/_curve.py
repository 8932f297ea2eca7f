"""Learning curves: saturating families fitted to validation accuracy, and a forecast.

Three three- or four-parameter families from the learning-curve literature (Domhan et al.,
"Speeding up automatic hyperparameter optimization of deep neural networks by
extrapolation of learning curves", IJCAI 2015; Viering & Loog, "The shape of learning
curves", 2022), each with a ceiling ``a``:

* ``pow3``: ``a - b * t**(-c)``, an inverse power law (a heavy tail: it keeps climbing);
* ``mmf``: ``a - (a - b) / (1 + (c * t)**d)``, Morgan-Mercer-Flodin (a sigmoid in log t);
* ``weibull``: ``a - b * exp(-(c * t)**d)`` (a stretched exponential: it saturates).

No one family fits every run: on this project's bundled workloads the power law fitted to
MNIST-1D runs its ceiling into 100 % and predicts gains that never come, and the saturating
families fitted to the first epochs of digits runs see no tail. :func:`forecast` therefore
**backtests**: each family is fitted to all epochs but the last quarter, the family that
predicted that quarter best is refitted to every epoch and extrapolated to the planned
end. The forecast keeps the backtest's error, so a rule can refuse to trust a family that
under-predicted the epochs it had not seen.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import (  # type: ignore[import-untyped,unused-ignore]
    OptimizeWarning,
    curve_fit,
)

__all__ = ["CURVE_FAMILIES", "FAMILY_NAMES", "CurveForecast", "forecast"]

_Array = np.ndarray[Any, Any]


def _pow3(t: _Array, a: float, b: float, c: float) -> _Array:
    return a - b * t ** (-c)


def _mmf(t: _Array, a: float, b: float, c: float, d: float) -> _Array:
    return a - (a - b) / (1.0 + (c * t) ** d)


def _weibull(t: _Array, a: float, b: float, c: float, d: float) -> _Array:
    return a - b * np.exp(-((c * t) ** d))


@dataclass(frozen=True)
class _Family:
    function: Callable[..., _Array]
    start: Callable[[_Array], tuple[float, ...]]
    lower: tuple[float, ...]
    upper: tuple[float, ...]


def _rise(y: _Array) -> float:
    return max(float(y.max()) - float(y[0]), 1e-3)


_FAMILIES: dict[str, _Family] = {
    "pow3": _Family(
        _pow3, lambda y: (float(y.max()), _rise(y), 0.5), (0.0, -2.0, 0.01), (1.0, 2.0, 3.0)
    ),
    "mmf": _Family(
        _mmf,
        lambda y: (float(y.max()), float(y[0]), 0.2, 1.0),
        (0.0, 0.0, 1e-3, 0.1),
        (1.0, 1.0, 10.0, 5.0),
    ),
    "weibull": _Family(
        _weibull,
        lambda y: (float(y.max()), 2 * _rise(y), 0.2, 0.7),
        (0.0, 0.0, 1e-3, 0.1),
        (1.0, 2.0, 10.0, 3.0),
    ),
}

#: The curve families :func:`forecast` chooses from.
CURVE_FAMILIES: tuple[str, ...] = tuple(_FAMILIES)

#: How each family is named in a sentence.
FAMILY_NAMES: dict[str, str] = {
    "pow3": "power-law",
    "mmf": "Morgan-Mercer-Flodin",
    "weibull": "Weibull",
}


@dataclass(frozen=True)
class CurveForecast:
    """What the fitted learning curve predicts from the epochs so far.

    Attributes:
        epochs_fitted: epochs the curve was fitted to.
        family: the curve family chosen by the backtest (:data:`CURVE_FAMILIES`).
        fitted_now: the fitted accuracy at the last epoch (0..1).
        measured_now: the validation accuracy measured at the last epoch (0..1).
        predicted_final: the fitted accuracy at the last planned epoch (0..1).
        gain: ``predicted_final - fitted_now``, in accuracy (0.01 = 1 pp).
        gain_sigma: one-sigma uncertainty of ``predicted_final`` relative to now, from the
            fit's parameter covariance (delta method).
        ceiling: the fitted ceiling ``a`` (accuracy after infinitely many epochs).
        backtest_epochs: epochs held out to choose the family (0: only one family tried).
        backtest_bias: mean measured minus back-predicted accuracy over the last three
            held-out epochs (> 0: the curve climbed faster than the family predicted).
    """

    epochs_fitted: int
    family: str
    fitted_now: float
    measured_now: float
    predicted_final: float
    gain: float
    gain_sigma: float
    ceiling: float
    backtest_epochs: int = 0
    backtest_bias: float = 0.0

    @property
    def shortfall(self) -> float:
        """How far the model in hand (measured now) is predicted to fall short of the
        planned run's final accuracy (``predicted_final - measured_now``)."""
        return self.predicted_final - self.measured_now


def _fit(family: _Family, t: _Array, y: _Array) -> tuple[_Array, _Array] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            params, cov = curve_fit(
                family.function,
                t,
                y,
                p0=family.start(y),
                bounds=(family.lower, family.upper),
                maxfev=4000,
            )
    except (RuntimeError, ValueError, OptimizeWarning):
        return None
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(cov))):
        return None
    return params, cov


def _at(family: _Family, params: _Array, epoch: float) -> float:
    return float(family.function(np.array([epoch], dtype=float), *params)[0])


def _gain_and_sigma(
    family: _Family, params: _Array, cov: _Array, now: int, planned: int
) -> tuple[float, float]:
    """``f(planned) - f(now)`` and its delta-method sigma (a numerical gradient)."""

    def gain(p: _Array) -> float:
        return _at(family, p, planned) - _at(family, p, now)

    g = gain(params)
    grad = np.zeros(len(params))
    for i in range(len(params)):
        step = 1e-6 * max(1.0, abs(float(params[i])))
        shifted = params.astype(float).copy()
        shifted[i] += step
        grad[i] = (gain(shifted) - g) / step
    return g, math.sqrt(max(float(grad @ cov @ grad), 0.0))


def _choose(y: _Array, families: Sequence[str], holdout: int) -> tuple[str, float] | None:
    """The family that best predicted the last ``holdout`` epochs from the ones before,
    and its bias over the last three of them; None when none could be fitted."""
    n = len(y)
    t_fit = np.arange(1, n - holdout + 1, dtype=float)
    t_held = np.arange(n - holdout + 1, n + 1, dtype=float)
    best: tuple[float, str, float] | None = None
    for name in families:
        fam = _FAMILIES[name]
        fitted = _fit(fam, t_fit, y[: n - holdout])
        if fitted is None:
            continue
        predicted = fam.function(t_held, *fitted[0])
        error = float(np.mean((predicted - y[n - holdout :]) ** 2))
        bias = float(np.mean(y[-3:]) - np.mean(predicted[-3:]))
        if best is None or error < best[0]:
            best = (error, name, bias)
    return None if best is None else (best[1], best[2])


def forecast(
    accuracies: Sequence[float],
    planned_epochs: int,
    *,
    families: Sequence[str] = CURVE_FAMILIES,
    holdout_share: float = 0.25,
) -> CurveForecast | None:
    """Fit a learning curve to ``accuracies`` (epochs 1..n) and extrapolate it to
    ``planned_epochs``; None when no family can be fitted.

    With more than one family, the family is chosen by a backtest on the last
    ``holdout_share`` of the epochs (at least 3), then refitted to all of them.
    """
    y = np.asarray(accuracies, dtype=float)
    n = len(y)
    if n < 3 or not np.all(np.isfinite(y)):
        return None
    unknown = [f for f in families if f not in _FAMILIES]
    if unknown or not families:
        raise ValueError(f"curve families must be among {CURVE_FAMILIES}, got {families}")
    holdout = max(3, int(n * holdout_share))
    name, bias = families[0], 0.0
    if len(families) > 1 and n - holdout >= 4:
        chosen = _choose(y, families, holdout)
        if chosen is None:
            return None
        name, bias = chosen
    else:
        holdout = 0
    fam = _FAMILIES[name]
    fitted = _fit(fam, np.arange(1, n + 1, dtype=float), y)
    if fitted is None:
        return None
    params, cov = fitted
    gain, sigma = _gain_and_sigma(fam, params, cov, n, planned_epochs)
    now = _at(fam, params, n)
    return CurveForecast(
        epochs_fitted=n,
        family=name,
        fitted_now=now,
        measured_now=float(y[-1]),
        predicted_final=now + gain,
        gain=gain,
        gain_sigma=sigma,
        ceiling=float(params[0]),
        backtest_epochs=holdout,
        backtest_bias=bias,
    )
