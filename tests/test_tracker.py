"""The tracker on real meters: a replayed trace gives exactly known energies."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

import wattwise.tracking._tracker as tracker_mod
from wattwise._records import RunStatus
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.testing import FakeClock
from wattwise.tracking import Tracker, Window, current_tracker, track

CPU = Component(
    "cpu:package-0",
    ComponentKind.CPU,
    Source(Method.MEASURED, "rapl-powercap"),
    relative_uncertainty=0.02,
)
CORE = Component(
    "cpu:core-0", ComponentKind.CPU_CORE, Source(Method.MEASURED, "rapl-powercap"), counted=False
)


def constant(power_w: float, component: str, seconds: float = 3600.0) -> list[TraceInterval]:
    return [TraceInterval(component, 0.0, seconds, power_w * seconds)]


def replay(*, cpu_w: float = 10.0, core_w: float = 6.0) -> ReplayMeter:
    return ReplayMeter([CPU, CORE], constant(cpu_w, CPU.name) + constant(core_w, CORE.name))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_energy_is_power_times_duration_and_subcomponents_are_not_added(
    clock: FakeClock,
) -> None:
    t = Tracker("const", meters=[replay()], store=False, interval_s=0.05, clock=clock)
    with t:
        clock.advance(0.3)
    r = t.result
    assert r is not None and r.status is RunStatus.COMPLETED
    assert r.duration_s == pytest.approx(0.3, abs=1e-9)
    assert r.energy_j == pytest.approx(3.0, rel=1e-9)
    assert r.energy_j == pytest.approx(10.0 * r.duration_s, rel=1e-6)
    core = next(c for c in r.components if c.name == CORE.name)
    assert core.energy_j == pytest.approx(6.0 * r.duration_s, rel=1e-6)
    assert not core.counted
    assert r.uncertainty_j == pytest.approx(0.02 * r.energy_j, rel=1e-6)
    assert r.provenance == "measured"
    # The timeline covers the run without holes and adds up to the total.
    cpu_samples = [s for s in r.samples if s.component == CPU.name]
    # A tick every 0.05 s of the fake clock, then stop's read at the same 0.3 s.
    assert [round(s.t_end_s, 9) for s in cpu_samples] == [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.3]
    assert sum(s.energy_j or 0 for s in cpu_samples) == pytest.approx(r.energy_j, rel=1e-9)
    for a, b in itertools.pairwise(cpu_samples):
        assert a.t_end_s == pytest.approx(b.t_start_s)


def test_nested_windows_have_their_own_energy_and_paths(clock: FakeClock) -> None:
    t = Tracker("windows", meters=[replay(cpu_w=20.0)], store=False, interval_s=10.0, clock=clock)
    with t:
        with t.window("train") as train:
            with t.window("epoch-1") as e1:
                clock.advance(0.1)
            with t.window("eval") as ev:
                clock.advance(0.05)
        clock.advance(0.05)
    r = t.result
    assert r is not None
    paths = [w.path for w in r.windows]
    assert paths == ["train/epoch-1", "train/eval", "train"]
    for w in (train, e1, ev):
        assert w.result is not None
        assert w.result.energy_j == pytest.approx(20.0 * w.result.duration_s, rel=1e-6)
    assert train.result is not None and e1.result is not None and ev.result is not None
    assert train.result.energy_j >= e1.result.energy_j + ev.result.energy_j - 1e-9
    assert (e1.result.energy_j, ev.result.energy_j) == (pytest.approx(2.0), pytest.approx(1.0))
    assert r.energy_j > train.result.energy_j  # the tail outside the window counts for the run


def test_track_nests_as_window_and_decorates_fresh_runs() -> None:
    runs = []

    @track("step", meters=[replay()], store=False, interval_s=0.05)
    def step() -> None:
        tr = current_tracker()
        assert tr is not None
        runs.append(tr)
        with track("inner") as inner:
            assert isinstance(inner, Window)

    step()
    step()
    assert len(runs) == 2 and runs[0] is not runs[1]
    for tr in runs:
        assert tr.result is not None
        assert [w.path for w in tr.result.windows] == ["inner"]
    assert current_tracker() is None


def test_a_failing_block_is_recorded_as_failed_and_reraised() -> None:
    t = Tracker("boom", meters=[replay()], store=False)
    with pytest.raises(ValueError, match="boom"), t:
        raise ValueError("boom")
    assert t.result is not None and t.result.status is RunStatus.FAILED


def test_keyboard_interrupt_marks_the_run_interrupted() -> None:
    t = Tracker("ctrl-c", meters=[replay()], store=False)
    with pytest.raises(KeyboardInterrupt), t:
        raise KeyboardInterrupt
    assert t.result is not None and t.result.status is RunStatus.INTERRUPTED


def test_a_recorded_gap_is_kept_as_a_gap_never_a_zero(clock: FakeClock) -> None:
    # 10 W, but the trace's sensor was unreadable from 0.1 s to 0.3 s.
    intervals = [
        TraceInterval(CPU.name, 0.0, 0.1, 1.0),
        TraceInterval(CPU.name, 0.1, 0.3, None),
        TraceInterval(CPU.name, 0.3, 100.0, 997.0),
    ]
    meter = ReplayMeter([CPU], intervals)
    t = Tracker("gappy", meters=[meter], store=False, interval_s=0.02, clock=clock)
    with t:
        clock.advance(0.5)
    r = t.result
    assert r is not None
    assert r.gaps, "the unreadable stretch must be recorded"
    assert all(not g.recovered for g in r.gaps)
    assert r.energy_lost_s == pytest.approx(0.2, abs=0.02 + 1e-9)  # to the sampler's period
    gap_samples = [s for s in r.samples if s.energy_j is None]
    assert gap_samples and all(s.note for s in gap_samples)
    # Energy outside the gap only: strictly less than 10 W over the whole run.
    assert r.energy_j < 10.0 * r.duration_s - 1.0
    assert r.to_dict()["energy_is_lower_bound"] is True
    cpu = r.components[0]
    assert cpu.gap_s == pytest.approx(r.energy_lost_s)


def test_baseline_gives_net_energy(clock: FakeClock) -> None:
    # 4 W for the first 0.3 s (idle, measured as the baseline), then 10 W.
    intervals = [
        TraceInterval(CPU.name, 0.0, 0.3, 1.2),
        TraceInterval(CPU.name, 0.3, 100.0, 10.0 * 99.7),
    ]
    meter = ReplayMeter([CPU], intervals)
    t = Tracker("net", meters=[meter], store=False, baseline_s=0.3, interval_s=0.05, clock=clock)
    with t:
        clock.advance(0.4)
    r = t.result
    assert r is not None and r.baseline_power_w is not None and r.net_energy_j is not None
    assert r.baseline_power_w == pytest.approx(4.0, rel=1e-9)  # the baseline slept 0.3 s
    assert r.net_energy_j == pytest.approx(r.energy_j - r.baseline_power_w * r.duration_s, rel=1e-6)
    assert r.net_energy_j == pytest.approx(6.0 * 0.4, rel=1e-6)


def test_interval_is_shortened_to_what_the_meter_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = replay()
    monkeypatch.setattr(type(meter), "max_interval_s", property(lambda self: 0.123))
    t = Tracker("short", meters=[meter], store=False, interval_s=5.0)
    with t:
        assert t._interval == pytest.approx(0.123)


def test_a_tracker_cannot_be_started_twice() -> None:
    t = Tracker("once", meters=[replay()], store=False)
    with t:
        pass
    with pytest.raises(tracker_mod.WattwiseError):
        t.start()


def test_live_energy_grows_while_running(clock: FakeClock) -> None:
    t = Tracker("live", meters=[replay()], store=False, interval_s=0.02, clock=clock)
    with t:
        clock.advance(0.1)
        first = t.energy_j
        clock.advance(0.1)
        assert t.energy_j > first > 0
        assert first == pytest.approx(1.0) and t.elapsed_s == pytest.approx(0.2)


def test_a_failed_start_is_final_and_the_phase_shows_in_running() -> None:
    t = Tracker("bad", meters=[replay()], store=False, interval_s=-1.0)
    assert not t.running and t.baseline_power_w is None and t.elapsed_s == 0.0
    with pytest.raises(tracker_mod.ConfigError, match="interval_s"):
        t.start()
    assert not t.running
    with pytest.raises(tracker_mod.WattwiseError, match="already started"):
        t.start()
    with pytest.raises(tracker_mod.WattwiseError, match="never started"):
        t.stop()


def test_the_wall_clock_comes_from_the_clock_too(clock: FakeClock) -> None:
    with Tracker("wall", meters=[replay()], store=False, clock=clock) as t:
        clock.advance(2.5)
    r = t.result
    assert r is not None
    assert r.started_at == clock.now() - timedelta(seconds=2.5)
    assert r.ended_at == clock.now() and r.duration_s == 2.5
