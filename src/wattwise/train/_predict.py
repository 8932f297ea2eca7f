"""Predicting a planned run's energy from its first epochs.

The simple rule ``planned_epochs x mean(measured epochs)`` is biased high early on: the
first epoch carries one-time costs (thread pools, allocator, kernel selection, data
caches) that later epochs do not pay. Here:

1. Epochs 2.. are the *steady* epochs. Epoch 1 joins them only when it is within the
   noise of the steady ones (within ``max(warmup_tolerance x mean, 2 sd)``), otherwise it
   is left out as warm-up. With one epoch measured there is nothing to compare it with;
   the prediction then extrapolates epoch 1, and says so.
2. The remaining epochs are each predicted at the mean of the basis epochs. The measured
   energy (epochs and the overhead between them) is added as it is.
3. Uncertainty: the remaining ``R`` epochs vary around the true mean with an
   epoch-to-epoch standard deviation ``s``, and the mean itself is known to ``s/sqrt(m)``
   from ``m`` basis epochs: ``sigma = s * sqrt(R + R**2 / m)``. ``s`` is pooled from the
   measured spread (``m - 1`` degrees of freedom) and a prior coefficient of variation
   (``prior_cv``, weight ``prior_weight`` epochs), so a prediction from one or two steady
   epochs never claims a spread of zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from wattwise._errors import ConfigError
from wattwise.train._records import EnergyPrediction

__all__ = ["PRIOR_CV", "predict_total"]

#: Assumed epoch-to-epoch coefficient of variation before the data can tell (10 %).
PRIOR_CV = 0.10
#: How many epochs' worth of evidence the prior counts for in the pooled spread.
PRIOR_WEIGHT = 2.0
#: Epoch 1 counts as warm-up when it is off the steady mean by more than this share...
WARMUP_TOLERANCE = 0.10


def predict_total(
    epoch_energies_j: Sequence[float],
    planned_epochs: int,
    *,
    overhead_j: float = 0.0,
    source: str = "",
    prior_cv: float = PRIOR_CV,
    prior_weight: float = PRIOR_WEIGHT,
    warmup_tolerance: float = WARMUP_TOLERANCE,
) -> EnergyPrediction:
    """Predict the energy of a planned run from the epochs measured so far.

    Args:
        epoch_energies_j: energy of each measured epoch, in order, in J.
        planned_epochs: epochs planned for the whole run.
        overhead_j: energy measured outside the epochs so far (set-up, between epochs), J.
        source: provenance of the measured energies, carried into the prediction.
        prior_cv: assumed epoch-to-epoch coefficient of variation (see the module doc).
        prior_weight: weight of the prior, in epochs.
        warmup_tolerance: relative difference beyond which epoch 1 is warm-up.

    Raises:
        ConfigError: no epoch measured, or more measured than planned.
    """
    energies = [float(e) for e in epoch_energies_j]
    n = len(energies)
    if n == 0:
        raise ConfigError("at least one measured epoch is needed to predict a run's energy")
    if planned_epochs < n:
        raise ConfigError(f"{n} epochs measured but only {planned_epochs} planned")

    warmup = False
    if n == 1:
        basis = [1]
    else:
        steady = energies[1:]
        mean_s = statistics.fmean(steady)
        sd_s = statistics.stdev(steady) if len(steady) >= 2 else 0.0
        warmup = abs(energies[0] - mean_s) > max(warmup_tolerance * abs(mean_s), 2.0 * sd_s)
        basis = list(range(2, n + 1)) if warmup else list(range(1, n + 1))

    values = [energies[i - 1] for i in basis]
    m = len(values)
    mean = statistics.fmean(values)
    dof = m - 1
    sample_var = statistics.variance(values) if m >= 2 else 0.0
    prior_var = (prior_cv * mean) ** 2
    var = (prior_weight * prior_var + dof * sample_var) / (prior_weight + dof)
    sd = math.sqrt(var)
    remaining = planned_epochs - n
    measured = sum(energies) + overhead_j
    return EnergyPrediction(
        total_j=measured + remaining * mean,
        sigma_j=sd * math.sqrt(remaining + remaining**2 / m),
        measured_j=measured,
        measured_epochs=n,
        planned_epochs=planned_epochs,
        epoch_mean_j=mean,
        epoch_sd_j=sd,
        basis_epochs=tuple(basis),
        warmup_left_out=warmup,
        spread_assumed=dof < 2,
        source=source,
    )
