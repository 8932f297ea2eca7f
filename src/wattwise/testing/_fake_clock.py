"""A fake clock for the tracker: time moves only when the test says so.

Hand it to a tracker and move time on with :meth:`FakeClock.advance` instead of sleeping::

    clock = FakeClock()
    with Tracker("run", meters=[replay], store=False, interval_s=0.05, clock=clock) as t:
        clock.advance(0.3)          # the sampler ticks at 0.05, 0.10, ... 0.30 s
    t.result.duration_s             # exactly 0.3

The tracker makes each thread's period with :meth:`FakeClock.every` before it starts the
thread, so the clock knows every period from then on. :meth:`advance` steps time from one
period's deadline to the next; at each it lets the threads due then run, and waits until
they wait again, so every tick happens at its exact time and has finished when ``advance``
returns.
"""

from __future__ import annotations

import enum
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only to check that FakeClock is a Clock (not imported at run time)
    from wattwise.tracking._clock import Clock

__all__ = ["FakeClock"]

#: How long (real seconds) ``advance`` waits for a woken thread before it gives up.
_STUCK_S = 30.0


class _State(enum.Enum):
    WAITING = "waiting"  # for its deadline
    DUE = "due"  # its deadline came; its thread has not taken the tick yet
    BUSY = "busy"  # its thread took the tick and has not waited again yet
    DONE = "done"  # its stop event was set


class _FakeTicker:
    def __init__(self, clock: FakeClock, interval_s: float, stop: threading.Event) -> None:
        self.clock = clock
        self.interval_s = interval_s
        self.stop = stop
        self.state = _State.WAITING
        self.deadline_s = clock._now + interval_s

    def wait(self) -> bool:
        cond = self.clock._cond
        with cond:
            if self.state is _State.BUSY:
                self.state = _State.WAITING
                self.deadline_s = self.clock._now + self.interval_s
                cond.notify_all()
            # Event.set() does not notify the condition: look at the event every ms.
            while self.state is _State.WAITING and not self.stop.is_set():
                cond.wait(0.001)
            if self.stop.is_set():
                self.state = _State.DONE
                cond.notify_all()
                return True
            self.state = _State.BUSY
            cond.notify_all()
            return False


class FakeClock:
    """A clock (the tracker's :class:`~wattwise.tracking.Clock`) that only moves on
    :meth:`advance` and :meth:`sleep`.

    Args:
        start_s: its monotonic time at first, in s.
        wall: its wall-clock time at ``start_s``.
    """

    def __init__(
        self, start_s: float = 1000.0, wall: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    ) -> None:
        self._now = start_s
        self._start_s = start_s
        self._wall = wall
        self._cond = threading.Condition()
        self._tickers: list[_FakeTicker] = []

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def now(self) -> datetime:
        with self._cond:
            return self._wall + timedelta(seconds=self._now - self._start_s)

    def sleep(self, seconds: float) -> None:
        """Sleeping moves the clock on (as :meth:`advance`)."""
        self.advance(seconds)

    def every(self, interval_s: float, stop: threading.Event) -> _FakeTicker:
        """A period whose first deadline is ``interval_s`` from now."""
        with self._cond:
            ticker = _FakeTicker(self, interval_s, stop)
            self._tickers.append(ticker)
            return ticker

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, letting each period's thread run at its deadlines."""
        if seconds < 0:
            raise ValueError(f"time cannot go back: advance({seconds})")
        with self._cond:
            target = self._now + seconds
            while True:
                self._settle()
                due = [t.deadline_s for t in self._live() if t.state is _State.WAITING]
                due = [d for d in due if d <= target]
                if not due:
                    break
                self._now = max(self._now, min(due))
                for t in self._live():
                    if t.state is _State.WAITING and t.deadline_s <= self._now:
                        t.state = _State.DUE
                self._cond.notify_all()
            self._now = target

    def _live(self) -> list[_FakeTicker]:
        self._tickers = [
            t for t in self._tickers if t.state is not _State.DONE and not t.stop.is_set()
        ]
        return self._tickers

    def _settle(self) -> None:
        """Wait until the thread of every period due or busy waits again (or stops)."""
        give_up = time.monotonic() + _STUCK_S
        while any(t.state is not _State.WAITING for t in self._live()):
            if time.monotonic() > give_up:
                raise RuntimeError("FakeClock: a woken thread did not wait again")
            self._cond.wait(0.001)


if TYPE_CHECKING:

    def _is_a_clock(clock: FakeClock) -> Clock:
        return clock
