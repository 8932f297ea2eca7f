"""The tracker's fake clock: time moves only on advance, and each period's thread runs at
its exact deadlines before advance returns."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from wattwise.testing import FakeClock


def test_advance_runs_a_periodic_thread_at_each_of_its_deadlines() -> None:
    clock = FakeClock(start_s=10.0)
    stop = threading.Event()
    ticks: list[float] = []
    ticker = clock.every(0.1, stop)  # made before the thread starts, as the tracker does

    def loop() -> None:
        while not ticker.wait():
            ticks.append(clock.monotonic())

    wall = clock.now()
    thread = threading.Thread(target=loop)
    thread.start()
    clock.advance(0.35)  # at once: the period is known even if the thread has not run yet
    assert ticks == pytest.approx([10.1, 10.2, 10.3])  # all done when advance returns
    assert clock.monotonic() == pytest.approx(10.35)
    assert clock.now() - wall == timedelta(seconds=clock.monotonic() - 10.0)
    stop.set()
    thread.join(5.0)
    assert not thread.is_alive()
    clock.advance(1.0)  # a stopped period is not waited for
    assert len(ticks) == 3


def test_sleep_moves_the_clock_and_time_cannot_go_back() -> None:
    clock = FakeClock(start_s=0.0)
    clock.sleep(2.5)
    assert clock.monotonic() == 2.5
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)
