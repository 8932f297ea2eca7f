"""A run's emissions added up as its samples are taken, so no sample is kept for them.

The tracker is handed an emissions function of samples (``_sink._Defaults.emissions``,
:func:`wattwise.carbon.emissions_for_samples`). It used to call it once, at the end, on every
sample of the run; a run of weeks would then hold them all. :class:`EmissionsTally` calls it
on batches as they fill and adds the batches up: the grams add, the mean intensity is
weighted by each batch's energy, exactly as over the whole run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from wattwise._errors import WattwiseError
from wattwise._records import CarbonFigures, Sample
from wattwise._units import J_PER_KWH

if TYPE_CHECKING:
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["EmissionsTally"]

#: Samples held before a batch is added up (bounded memory, one call per few minutes at 1 Hz).
BATCH_SAMPLES = 4096

_EmissionsFn = Callable[
    [Sequence[Sample], datetime, "IntensityProvider | Location", Collection[str]],
    CarbonFigures,
]


class EmissionsTally:
    """Emissions of the samples added so far.

    Args:
        emissions: the emissions of samples ``(samples, started_at, intensity, counted)``.
        started_at: when the run started.
        intensity: the intensity provider or location.
        counted: the names of the counted components.
    """

    def __init__(
        self,
        emissions: _EmissionsFn,
        started_at: datetime,
        intensity: IntensityProvider | Location,
        counted: Collection[str],
    ) -> None:
        self._emissions = emissions
        self._started_at = started_at
        self._intensity = intensity
        self._counted = frozenset(counted)
        self._batch: list[Sample] = []
        self._grams = 0.0
        self._kwh = 0.0
        self._last: CarbonFigures | None = None
        self._error: WattwiseError | None = None

    def add(self, samples: Sequence[Sample]) -> None:
        """Add samples (a batch is added up once it is full)."""
        if self._error is not None:
            return
        self._batch.extend(samples)
        if len(self._batch) >= BATCH_SAMPLES:
            self._fold()

    def _fold(self) -> None:
        batch, self._batch = self._batch, []
        try:
            figures = self._emissions(batch, self._started_at, self._intensity, self._counted)
        except WattwiseError as exc:
            self._error = exc
            return
        self._grams += figures.emissions_g
        self._kwh += (
            sum(
                s.energy_j for s in batch if s.energy_j is not None and s.component in self._counted
            )
            / J_PER_KWH
        )
        self._last = figures

    def figures(self) -> CarbonFigures:
        """The run's emissions so far.

        Raises:
            WattwiseError: as the emissions function raised (a sample outside a trace).
        """
        if self._batch or self._last is None:
            self._fold()
        if self._error is not None:
            raise self._error
        last = self._last
        assert last is not None
        if self._kwh <= 0:
            return last  # no energy: the intensity at the start, as for the whole run
        intensity = self._grams / (self._kwh * last.pue)
        return CarbonFigures(
            emissions_g=self._grams,
            intensity_g_per_kwh=intensity,
            zone=last.zone,
            pue=last.pue,
            intensity_source=last.intensity_source,
        )
