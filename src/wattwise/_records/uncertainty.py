"""The uncertainty of a run's total and net energy, from its components' records.

The tracker and the store both compute these (the store for a run it reads back), so they
live beside the records rather than in tracking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from wattwise._records.run import ComponentEnergy
from wattwise.meters._base import Method

__all__ = ["combined_uncertainty", "counted_totals", "net_uncertainty"]


def combined_uncertainty(energies: Iterable[ComponentEnergy]) -> float:
    """One-sigma uncertainty of the counted components' total, in J.

    Components share one scale error when one sensor measured them or one model estimated
    them: the same ``(method, sensor)`` of their :class:`Source` (the sockets RAPL
    measures, the GPUs NVML measures, the CPU estimate's sockets from one TDP). Within
    such a group the uncertainties add linearly (fully correlated); the groups are
    independent of each other and add in quadrature (root-sum-square). The result is never
    smaller than the largest component's uncertainty, nor larger than their linear sum.
    """
    groups: dict[tuple[Method, str], float] = {}
    for e in energies:
        if e.counted:
            key = (e.source.method, e.source.sensor)
            groups[key] = groups.get(key, 0.0) + e.uncertainty_j
    return math.hypot(*groups.values())


def counted_totals(energies: tuple[ComponentEnergy, ...]) -> tuple[float, float]:
    """Total energy and uncertainty (:func:`combined_uncertainty`) of the counted
    components, in J."""
    energy = sum(e.energy_j for e in energies if e.counted)
    return energy, combined_uncertainty(energies)


def net_uncertainty(
    energy_j: float,
    uncertainty_j: float,
    net_energy_j: float,
    relative_uncertainties: Iterable[float],
) -> float:
    """One-sigma uncertainty of a net energy, in J: the run's plus the baseline's.

    The baseline subtracted (``energy_j - net_energy_j``) is taken at the largest relative
    uncertainty among the counted components: an upper bound of the baseline's uncertainty
    (the baseline's split between components is not stored), which a run read back from
    the store gives again. The two add linearly, not in quadrature: the same sensors
    measured both, so their errors are not independent.
    """
    relative = max(relative_uncertainties, default=0.0)
    return uncertainty_j + abs(energy_j - net_energy_j) * relative
