"""Where a tracker writes its run, and the defaults it is handed for the store and carbon.

Tracking imports neither the store nor :mod:`wattwise.carbon` (docs/architecture.md):
``wattwise/__init__.py`` hands it, through :func:`set_defaults`, how to open the default run
store, which intensity to use where none is given, and how to compute emissions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from wattwise._errors import WattwiseError
from wattwise._records import (
    CarbonFigures,
    Gap,
    RunAllocation,
    RunResult,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.meters._base import Component
from wattwise.tracking._live import LiveRun

if TYPE_CHECKING:
    # Type-only: the intensity's annotation (import-linter skips these imports).
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["ClosableSink", "RunSink", "set_defaults"]

_V = TypeVar("_V")


class RunSink(Protocol):
    """Where a tracker writes a run as it goes (the run store implements this)."""

    def begin_run(
        self,
        *,
        run_id: str,
        name: str,
        scope: Scope,
        started_at: datetime,
        host: str,
        pid: int,
        command: tuple[str, ...] | None,
        components: Sequence[Component],
        baseline_power_w: float | None,
        allocation: RunAllocation | None = None,
    ) -> None: ...

    def append(
        self,
        run_id: str,
        *,
        samples: Sequence[Sample],
        gaps: Sequence[Gap],
        heartbeat_at: datetime,
    ) -> None: ...

    def add_window(self, run_id: str, window: WindowResult) -> None: ...

    def finish_run(self, result: RunResult) -> None: ...


class ClosableSink(RunSink, Protocol):
    """A sink the tracker opened itself, and so closes (the default run store)."""

    def close(self) -> None: ...


@dataclass
class _Defaults:
    """What a tracker uses where it is handed no store or intensity, and how it computes
    emissions: the run store and :mod:`wattwise.carbon`, set by :func:`set_defaults` from
    ``wattwise/__init__.py``, so that tracking imports neither (docs/architecture.md)."""

    open_store: Callable[[str | None], ClosableSink] | None = None
    resolve_intensity: Callable[[], IntensityProvider | Location] | None = None
    emissions: (
        Callable[
            [Sequence[Sample], datetime, IntensityProvider | Location, Collection[str]],
            CarbonFigures,
        ]
        | None
    ) = None
    #: Serves a run's live figures to Prometheus at (address, port); returns how to stop
    #: serving them (set by ``_wiring``: ``wattwise.monitoring`` needs an optional extra).
    serve_prometheus: (
        Callable[[Callable[[], LiveRun | None], str, int], Callable[[], None]] | None
    ) = None


_defaults = _Defaults()


def set_defaults(
    *,
    open_store: Callable[[str | None], ClosableSink],
    resolve_intensity: Callable[[], IntensityProvider | Location],
    emissions: Callable[
        [Sequence[Sample], datetime, IntensityProvider | Location, Collection[str]],
        CarbonFigures,
    ],
    serve_prometheus: Callable[[Callable[[], LiveRun | None], str, int], Callable[[], None]]
    | None = None,
) -> None:
    """Wire the tracker's defaults (called once, by ``wattwise/__init__.py``).

    Args:
        open_store: opens the run store at a URL (None: the configured one).
        resolve_intensity: the intensity to use where a tracker is given none.
        emissions: the emissions of samples ``(samples, started_at, intensity, counted
            component names)``.
        serve_prometheus: serves a run's live snapshots ``(live, address, port)`` and returns
            the function that stops serving that run.
    """
    _defaults.open_store = open_store
    _defaults.resolve_intensity = resolve_intensity
    _defaults.emissions = emissions
    if serve_prometheus is not None:
        _defaults.serve_prometheus = serve_prometheus


def _wired(value: _V | None) -> _V:
    if value is None:  # only while wattwise/__init__.py is still running
        raise WattwiseError("wattwise.tracking is used before wattwise finished importing")
    return value
