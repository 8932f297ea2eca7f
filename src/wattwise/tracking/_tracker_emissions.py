"""A tracker's emissions: which intensity it uses, the tally of its samples, the figures.

The intensity is the one given, else the configured one (``WATTWISE_ZONE``, the config file,
the world average; no network), through the defaults ``wattwise/__init__.py`` wires in
(``_sink.py``); the tally (``_emissions.py``) adds the emissions up as samples are taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from wattwise._errors import WattwiseError
from wattwise._records import CarbonFigures
from wattwise.meters._base import Component
from wattwise.tracking._emissions import EmissionsTally
from wattwise.tracking._sink import _defaults, _wired

if TYPE_CHECKING:
    # Type-only: the intensity parameter's annotation (import-linter skips these imports).
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["carbon_figures", "emissions_tally", "resolve_intensity"]


def resolve_intensity(
    emissions: bool, intensity: IntensityProvider | Location | None
) -> IntensityProvider | Location | None:
    """The intensity a run's emissions use: None when ``emissions`` is off, ``intensity``
    when given, else the configured one (env / config / world; no network)."""
    if not emissions:
        return None
    if intensity is not None:
        return intensity
    return _wired(_defaults.resolve_intensity)()


def emissions_tally(
    intensity: IntensityProvider | Location | None,
    components: Sequence[Component],
    started_at: datetime,
) -> EmissionsTally | None:
    """Emissions added up as samples are taken (the run's samples are not kept); None
    without an intensity."""
    if intensity is None:
        return None
    counted = {c.name for c in components if c.counted}
    emissions = _wired(_defaults.emissions)
    return EmissionsTally(emissions, started_at, intensity, counted)


def carbon_figures(tally: EmissionsTally, warn: Callable[[str], None]) -> CarbonFigures | None:
    """The run's emissions; None (warned about) when they cannot be computed."""
    try:
        return tally.figures()
    except WattwiseError as exc:
        warn(f"emissions could not be computed: {exc}")
        return None
