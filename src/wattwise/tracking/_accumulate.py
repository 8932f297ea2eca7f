"""Per-component energy accumulators for a run or one of its windows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from wattwise.meters._base import Component, Method
from wattwise.tracking._records import ComponentEnergy

__all__ = [
    "Accumulator",
    "combined_uncertainty",
    "counted_totals",
    "net_uncertainty",
    "share_after",
]


@dataclass
class _Slot:
    energy_j: float = 0.0
    gap_s: float = 0.0
    pending_gap_s: float = 0.0  # gap seconds that a counter may still recover
    measured_s: float = 0.0  # seconds covered by readings (for the edge uncertainty)


@dataclass
class Accumulator:
    """Adds up the energy and gaps of each component over a span of time."""

    slots: dict[str, _Slot] = field(default_factory=dict)

    def add(
        self, component: str, energy_j: float | None, duration_s: float, recovered: bool
    ) -> None:
        """Add one sample.

        Args:
            component: component name.
            energy_j: the sample's energy in J, None for a gap.
            duration_s: the sample's length in s.
            recovered: for a non-gap sample after a gap, whether it recovered the gap's energy.
        """
        slot = self.slots.setdefault(component, _Slot())
        if energy_j is None:
            slot.pending_gap_s += duration_s
            return
        if recovered:
            slot.measured_s += slot.pending_gap_s
        else:
            slot.gap_s += slot.pending_gap_s
        slot.pending_gap_s = 0.0
        slot.energy_j += energy_j
        slot.measured_s += duration_s

    def energies(self, components: list[Component]) -> tuple[ComponentEnergy, ...]:
        """Per-component energy; gaps still open count as lost."""
        out = []
        for c in components:
            slot = self.slots.get(c.name, _Slot())
            out.append(
                ComponentEnergy(
                    name=c.name,
                    kind=c.kind,
                    source=c.source,
                    counted=c.counted,
                    energy_j=slot.energy_j,
                    uncertainty_j=c.uncertainty_j(slot.energy_j, slot.measured_s),
                    gap_s=slot.gap_s + slot.pending_gap_s,
                    device=c.device,
                )
            )
        return tuple(out)


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


def share_after(
    energy_j: float | None, start_s: float, end_s: float, edge_s: float
) -> float | None:
    """The part of an interval's energy that falls after ``edge_s`` (a window's opening).

    A reading that recovers a gap covers the whole gap; a window opened during the gap gets
    the energy pro rata to the part of the interval it overlaps (the power over a gap is not
    known, so it is taken as constant). The run's total is not split: only the windows are.
    """
    if energy_j is None or end_s <= start_s or edge_s <= start_s:
        return energy_j
    return energy_j * max(0.0, end_s - edge_s) / (end_s - start_s)


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
