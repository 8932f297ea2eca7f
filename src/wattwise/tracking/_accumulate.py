"""Per-component energy accumulators for a run or one of its windows."""

from __future__ import annotations

from dataclasses import dataclass, field

from wattwise._records import ComponentEnergy
from wattwise.meters._base import Component

__all__ = [
    "Accumulator",
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
