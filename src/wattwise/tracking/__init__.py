"""Tracking: the sampler, the tracker with windows, scopes and baseline, and its records."""

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
    "ComponentEnergy",
    "Gap",
    "RunResult",
    "RunSink",
    "RunStatus",
    "Sample",
    "Scope",
    "Tracker",
    "Window",
    "WindowResult",
    "current_tracker",
    "last_run",
    "track",
]
