"""The intensity-provider contract: what emissions need to know about the grid.

A provider answers one question, ``intensity_at(when)``: the grid carbon intensity in
gCO2e/kWh at an instant, and says which zone, which PUE and which source it stands for.
Three implementations ship: :class:`ConstantIntensity` (a bundled or live figure),
:class:`wattwise.carbon.TraceIntensity` (a time series) and any user class.
"""

from __future__ import annotations

import abc
from datetime import datetime

from wattwise.carbon._location import Location

__all__ = ["ConstantIntensity", "IntensityProvider"]


class IntensityProvider(abc.ABC):
    """Grid carbon intensity over time for one zone, with the PUE to apply."""

    @property
    @abc.abstractmethod
    def zone(self) -> str:
        """Grid zone code."""

    @property
    @abc.abstractmethod
    def pue(self) -> float:
        """Power usage effectiveness applied to measured energy (ratio >= 1)."""

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """One line naming where the intensity comes from, with its year."""

    @abc.abstractmethod
    def intensity_at(self, when: datetime) -> float:
        """Grid intensity at an aware instant, in gCO2e/kWh.

        Raises:
            ConfigError: ``when`` lies outside what the provider knows.
        """


class ConstantIntensity(IntensityProvider):
    """The same intensity at every instant: a bundled (or live) figure for a location."""

    def __init__(self, location: Location) -> None:
        self._location = location

    @property
    def location(self) -> Location:
        """The location this provider stands for."""
        return self._location

    @property
    def zone(self) -> str:
        return self._location.zone

    @property
    def pue(self) -> float:
        return self._location.pue

    @property
    def source(self) -> str:
        return self._location.intensity_source

    def intensity_at(self, when: datetime) -> float:
        return self._location.intensity_g_per_kwh

    def __repr__(self) -> str:
        loc = self._location
        return (
            f"ConstantIntensity(zone={loc.zone!r}, intensity_g_per_kwh={loc.intensity_g_per_kwh})"
        )
