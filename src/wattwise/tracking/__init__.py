"""Tracking: the sampler, the tracker with windows, scopes and baseline, and its records."""

from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    HostPart,
    Member,
    MemberResult,
    MemberRole,
    RunAllocation,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.tracking._clock import Clock, SystemClock, Ticker
from wattwise.tracking._context import current_tracker, last_run
from wattwise.tracking._journal import StoreOutage
from wattwise.tracking._live import LiveComponent, LiveRun
from wattwise.tracking._orphans import JournalReplay, ReplayOutcome, recover_journals
from wattwise.tracking._sink import RunSink
from wattwise.tracking._track import track
from wattwise.tracking._tracker import Tracker
from wattwise.tracking._window import Window

__all__ = [
    "CarbonFigures",
    "Clock",
    "ComponentEnergy",
    "Gap",
    "HostPart",
    "JournalReplay",
    "LiveComponent",
    "LiveRun",
    "Member",
    "MemberResult",
    "MemberRole",
    "ReplayOutcome",
    "RunAllocation",
    "RunResult",
    "RunSink",
    "RunStatus",
    "Sample",
    "Scope",
    "StoreOutage",
    "SystemClock",
    "Ticker",
    "Tracker",
    "Window",
    "WindowResult",
    "current_tracker",
    "last_run",
    "recover_journals",
    "track",
]
