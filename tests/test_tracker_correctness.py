"""Issue 12, tracker side: recovered energy split over windows by time, nothing from before
the run's start counted in it, and net energy (with its own uncertainty) only over time
whose energy is known.

The runs here tick only where the test says (window edges and stop: ``interval_s`` far
longer than the test), so every interval is known and the figures are exact or bounded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from wattwise.cli._render import render_run
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._rapl import RaplMeter
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.testing._fake_powercap import FakePowercap
from wattwise.tracking._tracker import Tracker

NO_TICKS_S = 3600.0  # the sampler never ticks by itself within a test


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "sys")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_recovered_energy_is_split_by_time_over_the_windows_it_spans(
    fake: FakePowercap, clock: FakeClock
) -> None:
    # The counter is unreadable for 0.3 s at 50 W; a window opens 0.2 s into that gap and
    # closes as the counter is read again: of the 15 J recovered, the window's share is
    # the third that falls inside it (5 J; the whole 15 J before the fix).
    pkg = fake.add_socket(dram=False, core=False)

    def run_for(seconds: float) -> None:  # 50 W
        fake.advance(pkg, 50.0 * seconds)
        clock.advance(seconds)

    meter = RaplMeter(root=fake.root)
    t = Tracker("split", meters=[meter], store=False, interval_s=NO_TICKS_S, clock=clock)
    with t:
        with t.window("before"):
            run_for(0.1)
        fake.make_unreadable(pkg)
        run_for(0.2)
        with t.window("inside") as inside:
            run_for(0.1)
            fake.restore(pkg)
    r = t.result
    assert r is not None and inside.result is not None
    w = inside.result
    # The read at the window's close (stop reads again at the same time: a 0 s sample).
    recovered = [
        s for s in r.samples if s.energy_j is not None and s.t_start_s < s.t_end_s == w.end_s
    ]
    assert len(recovered) == 1
    sample = recovered[0]
    assert sample.energy_j is not None and sample.t_start_s < w.start_s  # spans the opening
    share = (w.end_s - w.start_s) / (sample.t_end_s - sample.t_start_s)
    assert w.energy_j == pytest.approx(sample.energy_j * share, rel=1e-9)
    assert w.energy_j == pytest.approx(5.0, rel=1e-6)
    assert sample.energy_j == pytest.approx(15.0, rel=1e-6)
    assert w.components[0].gap_s == 0.0  # recovered: nothing lost in the window
    # The run keeps the whole recovered energy: the split moves none of it out of the run.
    assert r.energy_j == pytest.approx(sum(s.energy_j or 0.0 for s in r.samples), rel=1e-9)
    assert r.gaps and all(g.recovered for g in r.gaps)


def test_energy_from_before_the_start_never_enters_the_run(
    fake: FakePowercap, clock: FakeClock
) -> None:
    # 100 J are used after the meter's first read, and the zone is unreadable across the
    # run's start; the run itself uses 5 J. Before the fix the run reported 105 J, its first
    # sample starting at -0.30 s, with no gap and not flagged a lower bound.
    pkg = fake.add_socket(dram=False, core=False)

    class FailsAcrossTheStart(RaplMeter):
        def start(self, now_s: float) -> list[Component]:
            components = super().start(now_s)
            fake.advance(pkg, 100.0)
            fake.make_unreadable(pkg)
            clock.advance(0.3)
            return components

    meter = FailsAcrossTheStart(root=fake.root)
    t = Tracker("start", meters=[meter], store=False, interval_s=NO_TICKS_S, clock=clock)
    with t:
        clock.advance(0.05)
        fake.restore(pkg)
        with t.window("readable-again"):
            pass  # its opening read is the first good one: it covers time before the start
        fake.advance(pkg, 5.0)
    r = t.result
    assert r is not None
    assert min(s.t_start_s for s in r.samples) >= 0.0
    assert r.energy_j == pytest.approx(5.0, abs=1e-6)
    assert len(r.gaps) == 1
    gap = r.gaps[0]
    assert gap.start_s == 0.0 and not gap.recovered
    assert gap.end_s == pytest.approx(r.windows[0].start_s)
    assert r.energy_lost_s > 0.0
    assert r.to_dict()["energy_is_lower_bound"] is True


def test_a_start_read_that_only_rebases_records_no_gap(fake: FakePowercap) -> None:
    # A zone first readable at the run's start read: counting starts there, nothing is lost
    # (a guard: opening gaps at the start read must not turn this into a gap).
    pkg0 = fake.add_socket(dram=False, core=False)
    pkg1 = fake.add_socket(dram=False, core=False)

    class SecondReadableAtTheStart(RaplMeter):
        def start(self, now_s: float) -> list[Component]:
            fake.make_empty(pkg1)  # the meter's own first read of it fails
            components = super().start(now_s)
            fake.restore(pkg1)
            return components

    meter = SecondReadableAtTheStart(root=fake.root)
    t = Tracker("rebase", meters=[meter], store=False, interval_s=NO_TICKS_S)
    with t:
        fake.advance(pkg0, 2.0)
        fake.advance(pkg1, 3.0)
    r = t.result
    assert r is not None
    assert r.energy_j == pytest.approx(5.0, abs=1e-6)
    assert r.gaps == ()
    assert r.to_dict()["energy_is_lower_bound"] is False


IDLE = Component(
    "cpu:package-0",
    ComponentKind.CPU,
    Source(Method.MEASURED, "rapl-powercap"),
    relative_uncertainty=0.02,
)


def idle_with_a_gap() -> ReplayMeter:
    # 90 W throughout, the sensor unreadable from 0.45 s to 0.95 s of the trace.
    return ReplayMeter(
        [IDLE],
        [
            TraceInterval(IDLE.name, 0.0, 0.45, 90.0 * 0.45),
            TraceInterval(IDLE.name, 0.45, 0.95, None),
            TraceInterval(IDLE.name, 0.95, 100.0, 90.0 * 99.05),
        ],
    )


def test_net_energy_of_an_idle_machine_with_a_gap_is_zero(clock: FakeClock) -> None:
    # Before the fix: net -45 J (90 W subtracted over the 0.5 s nothing was measured).
    meter = idle_with_a_gap()
    t = Tracker("idle", meters=[meter], store=False, baseline_s=0.2, interval_s=0.05, clock=clock)
    with t:
        clock.advance(1.0)
    r = t.result
    assert r is not None and r.net_energy_j is not None and r.baseline_power_w is not None
    assert r.baseline_power_w == pytest.approx(90.0, rel=1e-9)
    assert r.energy_lost_s >= 0.45
    assert r.net_energy_j == pytest.approx(0.0, abs=1e-6)
    # Net energy has its own uncertainty: the run's plus the baseline's over the time
    # subtracted (the energy - net), here both at the sensor's 2 %.
    subtracted_j = r.energy_j - r.net_energy_j
    assert r.net_uncertainty_j is not None
    assert r.net_uncertainty_j == pytest.approx(r.uncertainty_j + 0.02 * subtracted_j, rel=1e-9)
    assert r.net_uncertainty_j > r.uncertainty_j > 0.0
    assert r.to_dict()["net_uncertainty_j"] == r.net_uncertainty_j


def test_net_uncertainty_is_shown_and_survives_the_store(store_url: str, clock: FakeClock) -> None:
    store = RunStore.open(store_url)
    try:
        meter = idle_with_a_gap()
        t = Tracker("net", meters=[meter], store=store, baseline_s=0.1, interval_s=0.1, clock=clock)
        with t:
            clock.advance(0.3)
        r = t.result
        assert r is not None and r.net_uncertainty_j is not None
        loaded = store.get_run(r.run_id)
    finally:
        store.close()
    assert loaded.net_energy_j == pytest.approx(r.net_energy_j, rel=1e-9)
    assert loaded.net_uncertainty_j == pytest.approx(r.net_uncertainty_j, rel=1e-9)
    console = Console(width=120, record=True)
    render_run(loaded, console)
    lines = console.export_text().splitlines()
    net_line = next(line.strip() for line in lines if line.strip().startswith("net "))
    assert "±" in net_line


def test_a_run_without_baseline_has_no_net_uncertainty(clock: FakeClock) -> None:
    t = Tracker("plain", meters=[idle_with_a_gap()], store=False, interval_s=0.05, clock=clock)
    with t:
        clock.advance(0.1)
    r = t.result
    assert r is not None
    assert r.net_energy_j is None and r.net_uncertainty_j is None
    assert r.to_dict()["net_uncertainty_j"] is None
