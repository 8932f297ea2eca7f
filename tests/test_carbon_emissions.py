"""Emissions = energy × PUE × intensity, per sample with a time-varying source; equivalents."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from wattwise import ConfigError
from wattwise._records import CarbonFigures, Sample
from wattwise.carbon import (
    IntensityTrace,
    Location,
    TraceIntensity,
    emissions_for_energy,
    emissions_for_samples,
    equivalents,
)

KWH = 3.6e6
T0 = datetime(2020, 6, 1, tzinfo=UTC)


def _location(intensity: float = 400.0, pue: float = 1.5) -> Location:
    return Location(
        zone="XX", name="Test", intensity_g_per_kwh=intensity, year=2020, source="test", pue=pue
    )


def _hourly_trace(values: list[float]) -> IntensityTrace:
    start = T0.timestamp()
    times = start + 3600.0 * np.arange(len(values))
    return IntensityTrace(
        zone="TR",
        times_s=times,
        values_g_per_kwh=np.asarray(values, dtype=np.float64),
        end_s=float(times[-1] + 3600),
        source="unit test",
    )


def test_constant_intensity_energy_times_pue_times_intensity() -> None:
    figures = emissions_for_energy(2 * KWH, _location())
    assert isinstance(figures, CarbonFigures)
    assert figures.emissions_g == pytest.approx(2 * 1.5 * 400)
    assert (figures.zone, figures.pue, figures.intensity_g_per_kwh) == ("XX", 1.5, 400.0)
    assert figures.intensity_source == "bundled: test; 2020"


def test_samples_with_constant_intensity_skip_gaps_and_filter_components() -> None:
    samples = [
        Sample("cpu:package-0", 0, 10, KWH),
        Sample("cpu:package-0", 10, 20, None, note="read failed"),  # a gap: skipped
        Sample("gpu:0", 0, 10, 0.5 * KWH),
        Sample("cpu:core-0", 0, 10, 0.4 * KWH),  # sub-component, not counted
    ]
    figures = emissions_for_samples(
        samples, T0, _location(pue=1.0), components={"cpu:package-0", "gpu:0"}
    )
    assert figures.emissions_g == pytest.approx(1.5 * 400)
    everything = emissions_for_samples(samples, T0, _location(pue=1.0))
    assert everything.emissions_g == pytest.approx(1.9 * 400)


def test_time_varying_intensity_applies_each_samples_own_hour() -> None:
    provider = TraceIntensity(_hourly_trace([100.0, 300.0, 200.0]), pue=1.2)
    samples = [
        Sample("gpu:0", 0, 3600, 1 * KWH),  # hour 0 at 100
        Sample("gpu:0", 3600, 7200, 3 * KWH),  # hour 1 at 300
        Sample("gpu:0", 7200, 7300, None),  # gap
    ]
    started = T0.replace(tzinfo=None)  # naive start: UTC
    figures = emissions_for_samples(samples, started, provider)
    expected = 1.2 * (1 * 100 + 3 * 300)
    assert figures.emissions_g == pytest.approx(expected)
    assert figures.intensity_g_per_kwh == pytest.approx((100 + 900) / 4)  # energy-weighted
    assert figures.zone == "TR" and figures.pue == 1.2
    assert figures.intensity_source.startswith("trace: unit test")


def test_samples_outside_the_trace_are_an_error() -> None:
    provider = TraceIntensity(_hourly_trace([100.0, 300.0]))
    with pytest.raises(ConfigError, match="covers"):
        emissions_for_samples([Sample("cpu", 7200, 7260, 1.0)], T0, provider)


def test_no_energy_gives_zero_grams_and_the_start_intensity() -> None:
    figures = emissions_for_samples([Sample("cpu", 0, 1, None)], T0, _location())
    assert figures.emissions_g == 0.0
    assert figures.intensity_g_per_kwh == 400.0


def test_equivalents_carry_factor_source_and_year() -> None:
    items = {e.key: e for e in equivalents(1750.0)}
    assert items["car_km"].amount == pytest.approx(10.0)
    assert items["car_km"].year == 2019
    assert items["tree_months"].amount == pytest.approx(1750 / 917)
    assert items["flights_paris_london"].amount == pytest.approx(1750 / 50000)
    assert all(e.source for e in items.values())
    with pytest.raises(ConfigError):
        equivalents(-1.0)
