"""A cost predictor for selection: energy per inference (or latency) from architecture.

Once-for-All (Cai et al., ICLR 2020, section 3.4) specialises a network per target without
measuring every candidate: an accuracy predictor and a latency look-up table rank them, and
only the result is deployed. Here the same idea for energy: a small **calibration set** of
sub-networks, spread over the space by their multiply-accumulates, is measured under the
measurement protocol (and cached in the store like every measured candidate); a linear model
of the architecture's features (MACs, parameters, blocks run) is fitted to it by
non-negative least squares (:func:`scipy.optimize.nnls`: a sub-network that does more work
never predicts less), and the spread of the calibration measurements around the fit is the
prediction's one-sigma uncertainty. A prediction is always labelled as one; a choice made
with it is kept only when its own measurement fits the budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls  # type: ignore[import-untyped,unused-ignore]

from wattwise._errors import ConfigError
from wattwise.ofa._records import Candidate, CostPredictor
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig

__all__ = ["FEATURES", "calibration_set", "features_of", "fit_predictor"]

#: The architecture features a prediction is made from, in order: multiply-accumulates,
#: parameters, hidden-layer elements (:meth:`ElasticCNN.activations`) and blocks run, each
#: per item.
FEATURES = ("macs", "params", "activations", "blocks")

#: Configs drawn to spread a calibration set over the space by MACs.
_POOL = 400


def features_of(net: ElasticNetwork, config: SubnetConfig) -> tuple[float, ...]:
    """The :data:`FEATURES` of one sub-network (no export: counted from the architecture).

    Raises:
        ConfigError: the network cannot count its sub-networks' MACs and parameters.
    """
    counts = [getattr(net, name, None) for name in ("macs", "param_count", "activations")]
    if not all(callable(f) for f in counts):
        raise ConfigError(
            f"{type(net).__name__} does not count its sub-networks' MACs, parameters and "
            "activations (macs(), param_count(), activations()): select with energy='measured'"
        )
    values = [float(f(config)) for f in counts if callable(f)]
    return (*values, float(sum(config.depths)))


def calibration_set(
    net: ElasticNetwork, space: ElasticSpace, size: int, rng: random.Random
) -> list[SubnetConfig]:
    """``size`` sub-networks spread over ``space`` by MACs: the largest, the smallest, and
    the rest at evenly spaced ranks of a random sample (the whole space when it is small)."""
    if space.size() <= _POOL:
        drawn = list(space.enumerate())
    else:
        drawn = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(_POOL)]
    unique = {space.canonical(c).key: space.canonical(c) for c in drawn}
    ranked = sorted(unique.values(), key=lambda c: (features_of(net, c)[0], c.key))
    if len(ranked) <= size:
        return ranked
    picks = np.linspace(0, len(ranked) - 1, size).round().astype(int)
    return [ranked[i] for i in dict.fromkeys(int(i) for i in picks)]


def _solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NNLS with the columns scaled to 1 (the constraint does not care, the solver does)."""
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(x / scale, y)
    return np.asarray(coef / scale)


def fit_predictor(
    quantity: str, calibration: Sequence[Candidate], features: Sequence[Sequence[float]]
) -> CostPredictor:
    """Fit a :class:`CostPredictor` of ``quantity`` to measured candidates.

    Args:
        quantity: ``energy_per_item_j`` or ``latency_s``.
        calibration: the measured candidates.
        features: each candidate's :data:`FEATURES`, in the same order.

    Raises:
        ConfigError: fewer calibration sub-networks than the fit needs for a spread.
    """
    if quantity not in ("energy_per_item_j", "latency_s"):
        raise ConfigError(f"cannot predict {quantity!r} (energy_per_item_j or latency_s)")
    n, k = len(calibration), len(FEATURES) + 1
    if n != len(features):
        raise ConfigError(f"{n} calibration candidates but {len(features)} feature rows")
    if n < k + 1:
        raise ConfigError(
            f"a predictor of {len(FEATURES)} features needs at least {k + 1} calibration "
            f"sub-networks, got {n}: give a larger calibration set or select with "
            "energy='measured'"
        )
    y = np.array([getattr(c, quantity).median for c in calibration], dtype=float)
    x = np.column_stack([np.ones(n), np.asarray(features, dtype=float)])
    coef = _solve(x, y)
    fitted = x @ coef
    residual = y - fitted
    used = max(1, int(np.count_nonzero(coef)))
    sd = math.sqrt(float(residual @ residual) / max(1, n - used))
    loo = [y[i] - x[i] @ _solve(np.delete(x, i, 0), np.delete(y, i)) for i in range(n)]
    total = float(((y - y.mean()) ** 2).sum())
    return CostPredictor(
        quantity=quantity,
        features=FEATURES,
        coefficients=tuple(float(v) for v in coef),
        residual_sd=sd,
        loo_rmse=math.sqrt(float(np.mean(np.square(loo)))),
        r2=1.0 - float(residual @ residual) / total if total > 0 else 1.0,
        calibration=tuple(c.key for c in calibration),
        measured=tuple(float(v) for v in y),
        fitted=tuple(float(v) for v in fitted),
    )
