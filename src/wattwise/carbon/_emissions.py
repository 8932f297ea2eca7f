"""Emissions of measured energy: energy x PUE x grid intensity, and everyday equivalents.

With a time-varying provider, each sample's energy is multiplied by the intensity at the
middle of its interval (samples last seconds; traces change every 15 to 60 minutes, so
the midpoint is exact but for the samples that straddle a trace step). Samples whose
energy is unknown (sensor gaps, ``energy_j is None``) are skipped, never counted as zero
or filled in: the emissions are then those of the energy that was measured.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wattwise._errors import ConfigError
from wattwise._records import CarbonFigures, Sample
from wattwise.carbon._base import ConstantIntensity, IntensityProvider
from wattwise.carbon._data import equivalent_factors
from wattwise.carbon._location import Location

__all__ = [
    "J_PER_KWH",
    "Equivalent",
    "emissions_for_energy",
    "emissions_for_samples",
    "equivalents",
]

#: Joules in one kilowatt-hour.
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Equivalent:
    """A mass of CO2e expressed as an everyday activity.

    Attributes:
        key: ``car_km``, ``tree_months``, ``flights_paris_london``...
        amount: how many units the mass equals.
        unit: unit name (``km``, ``tree-months``, ``flights``).
        label: what a unit is (``driven by an average European passenger car``).
        g_per_unit: the factor used, in gCO2e per unit.
        source: where the factor comes from.
        year: year of the factor, or None where its source states none.
    """

    key: str
    amount: float
    unit: str
    label: str
    g_per_unit: float
    source: str
    year: int | None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "amount": self.amount,
            "unit": self.unit,
            "label": self.label,
            "g_per_unit": self.g_per_unit,
            "source": self.source,
            "year": self.year,
        }


def _aware(when: datetime) -> datetime:
    """Naive datetimes are UTC (the run store keeps UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def emissions_for_samples(
    samples: Sequence[Sample],
    started_at: datetime,
    provider: IntensityProvider | Location,
    *,
    components: Collection[str] | None = None,
) -> CarbonFigures:
    """Emissions of a run's power timeline.

    Args:
        samples: the timeline; ``t_start_s``/``t_end_s`` are s since ``started_at``.
        started_at: when the run started (naive: UTC).
        provider: an intensity provider, or a :class:`Location` (constant intensity).
        components: names of the components to count (the run's *counted* components,
            so that sub-components such as RAPL core are not added twice); None: all.

    Returns:
        ``emissions_g`` (gCO2e), the energy-weighted mean ``intensity_g_per_kwh``, the
        zone, the PUE and the intensity's source. Gaps are skipped.

    Raises:
        ConfigError: a sample lies outside what a time-varying provider covers.
    """
    if isinstance(provider, Location):
        provider = ConstantIntensity(provider)
    start = _aware(started_at)
    pue = provider.pue
    energy_kwh = 0.0
    grams = 0.0
    for sample in samples:
        if sample.energy_j is None:
            continue
        if components is not None and sample.component not in components:
            continue
        middle = start + timedelta(seconds=(sample.t_start_s + sample.t_end_s) / 2)
        kwh = sample.energy_j / J_PER_KWH
        energy_kwh += kwh
        grams += kwh * pue * provider.intensity_at(middle)
    # energy-weighted mean; with no energy, the intensity at the start
    intensity = grams / (energy_kwh * pue) if energy_kwh > 0 else provider.intensity_at(start)
    return CarbonFigures(
        emissions_g=grams,
        intensity_g_per_kwh=intensity,
        zone=provider.zone,
        pue=pue,
        intensity_source=provider.source,
    )


def emissions_for_energy(
    energy_j: float,
    provider: IntensityProvider | Location,
    *,
    at: datetime | None = None,
) -> CarbonFigures:
    """Emissions of an energy figure at one intensity (the constant-intensity shortcut).

    Args:
        energy_j: energy drawn by the machine, in J (PUE is applied on top).
        provider: a :class:`Location` or an intensity provider.
        at: the instant whose intensity to use with a time-varying provider (default:
            now); ignored by a constant one.

    Raises:
        ConfigError: negative or non-finite energy.
    """
    if not energy_j >= 0 or energy_j == float("inf"):
        raise ConfigError(f"energy {energy_j!r} J must be a finite number >= 0")
    if isinstance(provider, Location):
        provider = ConstantIntensity(provider)
    intensity = provider.intensity_at(_aware(at) if at else datetime.now(UTC))
    return CarbonFigures(
        emissions_g=energy_j / J_PER_KWH * provider.pue * intensity,
        intensity_g_per_kwh=intensity,
        zone=provider.zone,
        pue=provider.pue,
        intensity_source=provider.source,
    )


def equivalents(emissions_g: float) -> tuple[Equivalent, ...]:
    """A mass of CO2e as car kilometres, tree-months and flights, each with its source.

    Args:
        emissions_g: gCO2e.

    Raises:
        ConfigError: negative or non-finite mass.
    """
    if not emissions_g >= 0 or emissions_g == float("inf"):
        raise ConfigError(f"emissions {emissions_g!r} g must be a finite number >= 0")
    return tuple(
        Equivalent(
            key=f.key,
            amount=emissions_g / f.g_per_unit,
            unit=f.unit,
            label=f.label,
            g_per_unit=f.g_per_unit,
            source=f.source,
            year=f.year,
        )
        for f in equivalent_factors()
    )
