"""Tracking: the sampler, the tracker with windows, scopes and baseline, and its records."""

from wattwise.tracking._clock import Clock, SystemClock
from wattwise.tracking._records import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.tracking._tracker import (
    RunSink,
    Tracker,
    Window,
    current_tracker,
    last_run,
    track,
)

__all__ = [
    "CarbonFigures",
    "Clock",
    "ComponentEnergy",
    "Gap",
    "RunResult",
    "RunSink",
    "RunStatus",
    "Sample",
    "Scope",
    "SystemClock",
    "Tracker",
    "Window",
    "WindowResult",
    "current_tracker",
    "last_run",
    "track",
]
