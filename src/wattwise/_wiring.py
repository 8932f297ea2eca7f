"""The composition root: hands the tracker its default run store, intensity and emissions,
and the Prometheus endpoint a run serves on when asked to.

Tracking sits below the store and carbon and imports neither (docs/architecture.md); this
module, run once by ``wattwise/__init__.py``, gives it what it opens where a caller passes
no ``store`` or ``intensity``. The store and carbon are imported on first use, as before,
so ``import wattwise`` stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from wattwise._records import CarbonFigures, Sample
from wattwise.tracking._live import LiveRun
from wattwise.tracking._sink import ClosableSink, set_defaults

if TYPE_CHECKING:
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["install"]


def _open_store(url: str | None) -> ClosableSink:
    from wattwise.store import RunStore

    return RunStore.open(url)


def _resolve_intensity() -> IntensityProvider | Location:
    from wattwise.carbon import resolve_location

    return resolve_location()


def _emissions(
    samples: Sequence[Sample],
    started_at: datetime,
    intensity: IntensityProvider | Location,
    counted: Collection[str],
) -> CarbonFigures:
    from wattwise.carbon import emissions_for_samples

    return emissions_for_samples(samples, started_at, intensity, components=counted)


def _serve_prometheus(
    live: Callable[[], LiveRun | None], addr: str, port: int
) -> Callable[[], None]:
    # Imported when a run asks for it: it needs the optional prometheus-client (one line
    # naming wattwise[prometheus] when it is missing).
    from wattwise.monitoring import serve_run

    return serve_run(live, addr, port)


def install() -> None:
    """Wire the tracker's defaults to the run store, :mod:`wattwise.carbon` and
    :mod:`wattwise.monitoring`."""
    set_defaults(
        open_store=_open_store,
        resolve_intensity=_resolve_intensity,
        emissions=_emissions,
        serve_prometheus=_serve_prometheus,
    )
