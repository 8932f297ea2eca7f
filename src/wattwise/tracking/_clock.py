"""The tracker's clock: monotonic time, wall time, and the waits of its threads.

The tracker reads every time through one :class:`Clock`, so a test can hand it a fake
(:class:`wattwise.testing.FakeClock`) and move time on without sleeping. The default,
:class:`SystemClock`, is the real one.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "Ticker"]


class Ticker(Protocol):
    """The period of one of the tracker's threads (see :meth:`Clock.every`)."""

    def wait(self) -> bool:
        """Wait one period, or until the stop event is set; whether it is set."""
        ...


class Clock(Protocol):
    """Where a tracker takes its time from."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for durations and the meters' reads)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time, timezone-aware (for ``started_at`` and heartbeats)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (the idle baseline)."""
        ...

    def every(self, interval_s: float, stop: threading.Event) -> Ticker:
        """A period for a thread's loop (``while not ticker.wait(): ...``), made before the
        thread starts, so that a fake clock knows of the thread from then on."""
        ...


class _EventTicker:
    def __init__(self, interval_s: float, stop: threading.Event) -> None:
        self.interval_s = interval_s
        self.stop = stop

    def wait(self) -> bool:
        return self.stop.wait(self.interval_s)


class SystemClock:
    """The real clock: :func:`time.monotonic`, UTC wall time, real sleeps and waits."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def every(self, interval_s: float, stop: threading.Event) -> Ticker:
        return _EventTicker(interval_s, stop)
