"""The energy/accuracy Pareto front, shared by the studies and the reports."""

from __future__ import annotations

from collections.abc import Sequence

from wattwise._errors import ConfigError

__all__ = ["pareto_mask"]


def pareto_mask(energies_j: Sequence[float], accuracies: Sequence[float]) -> list[bool]:
    """Which points are on the energy/accuracy Pareto front.

    A point is on the front when no other point uses no more energy and reaches no lower
    accuracy while being strictly better in one of the two.

    Args:
        energies_j: energy of each point, in J (lower is better).
        accuracies: accuracy of each point (higher is better).
    """
    if len(energies_j) != len(accuracies):
        raise ConfigError("pareto_mask needs as many energies as accuracies")
    points = list(zip(energies_j, accuracies, strict=True))
    mask = []
    for e, acc in points:
        dominated = any((e2 <= e and a2 >= acc) and (e2 < e or a2 > acc) for e2, a2 in points)
        mask.append(not dominated)
    return mask
