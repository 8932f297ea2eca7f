"""A fake clock for the tracker: time moves only when the test says so.

Hand it to a tracker and move time on with :meth:`FakeClock.advance` instead of sleeping::

    clock = FakeClock()
    with Tracker("run", meters=[replay], store=False, interval_s=0.05, clock=clock) as t:
        clock.advance(0.3)          # the sampler ticks at 0.05, 0.10, ... 0.30 s, then waits
    t.result.duration_s             # exactly 0.3

:meth:`advance` steps time from one waiting thread's deadline to the next: at each it wakes
the threads due then (the tracker's sampler and flusher) and waits until they wait again,
so every tick happens at its exact time and has finished when ``advance`` returns.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]

#: How long (real seconds) ``advance`` waits for a woken thread before it gives up.
_STUCK_S = 30.0


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
        self._waiting: dict[int, float] = {}  # thread id -> deadline, while it waits
        self._busy: set[int] = set()  # threads woken by a deadline, not waiting again yet

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def now(self) -> datetime:
        with self._cond:
            return self._wall + timedelta(seconds=self._now - self._start_s)

    def sleep(self, seconds: float) -> None:
        """Sleeping moves the clock on (as :meth:`advance`)."""
        self.advance(seconds)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            self._busy.discard(me)
            self._waiting[me] = self._now + timeout_s
            self._cond.notify_all()
            # Event.set() does not notify this condition: look at the event every ms.
            while me in self._waiting and not event.is_set():
                self._cond.wait(0.001)
            if event.is_set():
                self._waiting.pop(me, None)
                self._busy.discard(me)
                self._cond.notify_all()
                return True
            return False

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, letting each waiting thread run at its deadline."""
        if seconds < 0:
            raise ValueError(f"time cannot go back: advance({seconds})")
        with self._cond:
            target = self._now + seconds
            while True:
                self._settle()
                due = [d for d in self._waiting.values() if d <= target]
                if not due:
                    break
                self._now = max(self._now, min(due))
                for ident, deadline in list(self._waiting.items()):
                    if deadline <= self._now:
                        del self._waiting[ident]
                        self._busy.add(ident)
                self._cond.notify_all()
            self._now = target

    def _settle(self) -> None:
        """Wait until every woken thread waits again (or has ended)."""
        give_up = time.monotonic() + _STUCK_S
        while self._busy:
            alive = {t.ident for t in threading.enumerate()}
            self._busy &= alive
            if time.monotonic() > give_up:
                raise RuntimeError("FakeClock: a woken thread did not wait again")
            self._cond.wait(0.001)
