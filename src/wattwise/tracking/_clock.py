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

__all__ = ["Clock", "SystemClock"]


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

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        """Wait until ``event`` is set or ``timeout_s`` passed; whether it is set (the
        sampler's and flusher's period)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, UTC wall time, real sleeps and waits."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        return event.wait(timeout_s)
