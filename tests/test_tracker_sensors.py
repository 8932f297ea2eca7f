"""The tracker over the RAPL and NVML meters, on a fake powercap tree and a fake NVML."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from wattwise.meters._estimate import EstimateMeter
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._rapl import RaplMeter
from wattwise.testing import FakeClock
from wattwise.testing._fake_nvml import FakeGpu, make_fake_nvml
from wattwise.testing._fake_powercap import FakePowercap
from wattwise.tracking._tracker import Tracker


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "sys")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_rapl_energy_equals_what_the_counters_advanced(
    fake: FakePowercap, clock: FakeClock
) -> None:
    pkg0 = fake.add_socket(dram=True)
    pkg1 = fake.add_socket(dram=False)
    meter = RaplMeter(root=fake.root)
    t = Tracker("rapl", meters=[meter], store=False, interval_s=0.05, clock=clock)
    with t:
        for _ in range(8):  # 0.4 s at 30 W and 20 W, the sampler reading every 0.05 s
            fake.advance(pkg0, 30.0 * 0.05)
            fake.advance(pkg1, 20.0 * 0.05)
            clock.advance(0.05)
    r = t.result
    assert r is not None
    assert r.provenance == "measured"
    # The tracker saw exactly what was written between its first and last read.
    assert r.duration_s == pytest.approx(0.4)
    assert r.energy_j == pytest.approx(50.0 * 0.4, abs=1e-5)
    names = {c.name for c in r.components if c.counted}
    assert {"cpu:package-0", "cpu:package-1"} <= names


def test_unreadable_counter_is_recovered_by_the_next_read(
    fake: FakePowercap, clock: FakeClock
) -> None:
    pkg = fake.add_socket(dram=False, core=False)
    meter = RaplMeter(root=fake.root)
    t = Tracker("recover", meters=[meter], store=False, interval_s=0.02, clock=clock)
    with t:
        fake.advance(pkg, 1.0)
        clock.advance(0.06)
        fake.make_unreadable(pkg)
        fake.advance(pkg, 2.0)
        clock.advance(0.1)
        fake.restore(pkg)
        fake.advance(pkg, 4.0)
        clock.advance(0.06)
    r = t.result
    assert r is not None
    assert r.energy_j == pytest.approx(7.0, abs=1e-6)  # nothing lost, nothing invented
    assert r.gaps and all(g.recovered for g in r.gaps)
    assert r.energy_lost_s == 0.0
    assert r.to_dict()["energy_is_lower_bound"] is False


def test_gpu_driver_reset_is_a_gap_and_energy_is_a_lower_bound(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = make_fake_nvml(2)
    meter = NvmlMeter(nvml=fake.module)
    t = Tracker("gpu", meters=[meter], store=False, interval_s=0.02, clock=clock)
    with t:
        clock.advance(0.06)
        fake.advance(1.0, 100.0)
        fake.reset(0)  # before the tracker read gpu:0's first 100 J: those are lost
        clock.advance(0.06)
        fake.advance(1.0, 100.0)
        clock.advance(0.06)
    r = t.result
    assert r is not None
    by_name = {c.name: c for c in r.components}
    assert by_name["gpu:1"].energy_j == pytest.approx(200.0)
    # gpu:0 lost the interval across the reset and kept only what came after it.
    assert by_name["gpu:0"].energy_j == pytest.approx(100.0)
    assert by_name["gpu:0"].gap_s > 0
    assert [g.component for g in r.gaps] == ["gpu:0"]
    assert not r.gaps[0].recovered
    assert r.to_dict()["energy_is_lower_bound"] is True


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_process_scope_shares_every_cpu_when_rapl_measures_whole_packages(
    fake: FakePowercap,
) -> None:
    """RAPL's package power covers every CPU, so a pinned process's share is of all of them;
    the estimate's power covers only the CPUs it may run on, so its share is of those."""
    fake.add_socket(dram=False)
    every = psutil.cpu_count(logical=True) or 1
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        with Tracker("rapl", meters=[RaplMeter(root=fake.root)], store=False, scope="process") as t:
            assert t._share.cpus == frozenset(range(every))
        with Tracker(
            "est", meters=[EstimateMeter(cpu_tdp_w=65.0)], store=False, scope="process"
        ) as e:
            assert e._share.cpus == frozenset({min(before)})
    finally:
        os.sched_setaffinity(0, before)


def test_gpu_window_shorter_than_the_counter_step_says_it_may_be_off_by_all_of_it(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # Issue 12: before, a window's uncertainty was only 5% of what it read (0 J +- 0 J when
    # the stepped counter had not moved); now the 0.1 s step x mean power is added.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = make_fake_nvml([FakeGpu(counter_update_s=0.1, power_w=300.0)])
    meter = NvmlMeter(nvml=fake.module)
    t = Tracker("gpu", meters=[meter], store=False, interval_s=0.01, clock=clock)
    with t, t.window("short"):
        fake.advance(0.1)  # one counter step published inside a window of a few ms
        clock.advance(0.03)
    r = t.result
    assert r is not None
    (short,) = [x for x in r.windows if x.name == "short"]
    assert short.energy_j == pytest.approx(30.0)
    assert short.uncertainty_j >= short.energy_j
