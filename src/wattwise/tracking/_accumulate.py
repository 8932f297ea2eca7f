"""Per-component energy accumulators for a run or one of its windows."""

from __future__ import annotations

from dataclasses import dataclass, field

from wattwise.meters._base import Component
from wattwise.tracking._records import ComponentEnergy

__all__ = ["Accumulator", "counted_totals"]


@dataclass
class _Slot:
    energy_j: float = 0.0
    gap_s: float = 0.0
    pending_gap_s: float = 0.0  # gap seconds that a counter may still recover


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
        if not recovered:
            slot.gap_s += slot.pending_gap_s
        slot.pending_gap_s = 0.0
        slot.energy_j += energy_j

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
                    uncertainty_j=slot.energy_j * c.relative_uncertainty,
                    gap_s=slot.gap_s + slot.pending_gap_s,
                    device=c.device,
                )
            )
        return tuple(out)


def counted_totals(energies: tuple[ComponentEnergy, ...]) -> tuple[float, float]:
    """Total energy and (linear-sum) uncertainty of the counted components, in J."""
    energy = sum(e.energy_j for e in energies if e.counted)
    uncertainty = sum(e.uncertainty_j for e in energies if e.counted)
    return energy, uncertainty
