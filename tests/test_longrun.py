"""Issue 17 §5: runs that last weeks. The tracker keeps a bounded timeline, not every sample;
the store aggregates and downsamples a long run in SQL; both keep the energies exact.

Sizes are what is checked here (bounded) and sums (equal to the full ones); the memory and
the times on a simulated week are measured by ``benchmarks/bench_longrun.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from wattwise._records import Sample
from wattwise.carbon import IntensityTrace, TraceIntensity, emissions_for_samples
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.tracking._timeline import Timeline
from wattwise.tracking._tracker import Tracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GPU = Component("gpu:0", ComponentKind.GPU, Source(Method.MEASURED, "replay of nvml"))
CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "replay of tdp"), True, None, 0.1
)


def _meter() -> ReplayMeter:
    """A 10 s trace played in a loop: the GPU at 100-190 W, the CPU at 20 W with a 1 s
    recorded gap in each loop (gaps must stay gaps through downsampling)."""
    intervals = [TraceInterval(GPU.name, i, i + 1.0, 100.0 + 10 * i) for i in range(10)]
    intervals += [TraceInterval(CPU.name, i, i + 1.0, None if i == 7 else 20.0) for i in range(10)]
    return ReplayMeter([GPU, CPU], intervals, loop=True)


def _by_component(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        out[s.component].append(s)
    return out


def _energy(samples: Iterable[Sample]) -> float:
    return sum(s.energy_j or 0.0 for s in samples)


def _gap_s(samples: Iterable[Sample]) -> float:
    return sum(s.t_end_s - s.t_start_s for s in samples if s.energy_j is None)


def test_a_timeline_stays_bounded_and_keeps_the_energy_and_the_gaps() -> None:
    timeline = Timeline(["a", "b"], max_points=8)
    full = []
    for i in range(1000):
        full.append(Sample("a", i, i + 1.0, 2.0))
        full.append(Sample("b", i, i + 1.0, None if 300 <= i < 700 else 1.0, "down"))
    for s in full:
        timeline.add(s)
    kept = timeline.samples()
    assert len(kept) == len(timeline) <= 16
    for name, points in _by_component(kept).items():
        everything = [s for s in full if s.component == name]
        assert len(points) <= 8
        assert _energy(points) == pytest.approx(_energy(everything), rel=1e-12)
        assert points[0].t_start_s == 0.0 and points[-1].t_end_s == 1000.0
        ends = [p.t_end_s for p in points]
        assert ends == sorted(ends)
    b = _by_component(kept)["b"]
    # The 400 s gap: whole points of it are gaps (None, never zero), mixed ones say so.
    assert any(p.energy_j is None and p.note == "down" for p in b)
    assert all("unreadable" in (p.note or "") for p in b if p.energy_j is not None and p.note)
    assert sum(1 for p in b if p.energy_j is not None and p.note) <= 2


def test_a_short_timeline_is_kept_sample_by_sample() -> None:
    timeline = Timeline(["a"], max_points=8)
    full = [Sample("a", i, i + 1.0, float(i)) for i in range(8)]
    for s in full:
        timeline.add(s)
    assert timeline.samples() == tuple(full)


def _trace(hours: int) -> TraceIntensity:
    times = T0.timestamp() + 3600.0 * np.arange(hours)
    values = np.asarray([100.0 + 50 * (h % 3) for h in range(hours)])
    return TraceIntensity(
        IntensityTrace("TR", times, values, end_s=float(times[-1] + 3600), source="test"),
        pue=1.1,
    )


@pytest.mark.slow
def test_a_long_run_holds_a_bounded_timeline_and_the_store_every_sample(tmp_path: Path) -> None:
    # 12,000 reads of 2 components (0.5 s apart over 100 min, intensity changing hourly):
    # far past the 2,048 points a component keeps, and past the emissions' batches.
    clock = FakeClock(wall=T0)
    store_path = str(tmp_path / "runs.sqlite")
    provider = _trace(3)
    with RunStore.open(store_path) as store:
        t = Tracker(
            "long", meters=[_meter()], store=store, interval_s=0.5, clock=clock, intensity=provider
        )
        with t:
            clock.advance(6000.0)
        result = t.result
        assert result is not None
        stored = store.samples(result.run_id)
        again = store.get_run(result.run_id)
        store.finish_run(result)  # a downsampled result stored again adds no sample
        assert len(store.samples(result.run_id)) == len(stored)
        saved_doc = store.list_studies(kind="timeline")
        drawn = store.get_run(result.run_id, timeline_points=100)
    assert len(stored) == 2 * 12_001  # and the last read, at stop
    kept = _by_component(result.samples)
    full = _by_component(stored)
    for name in (GPU.name, CPU.name):
        assert len(kept[name]) <= 2048
        assert _energy(kept[name]) == pytest.approx(_energy(full[name]), rel=1e-9)
        assert _gap_s(kept[name]) <= _gap_s(full[name])
    assert result.energy_j == pytest.approx(_energy(stored), rel=1e-9)
    assert again.energy_j == result.energy_j
    # The finished run's bounded timeline is kept for reports, which merge it down.
    assert [p.kind for p in saved_doc] == ["timeline"]
    assert len(drawn.samples) <= 2 * 101
    assert _energy(drawn.samples) == pytest.approx(_energy(stored), rel=1e-9)
    # Emissions added up in batches as the samples came equal those of every sample at once.
    whole = emissions_for_samples(stored, result.started_at, provider, components={"gpu:0", "cpu"})
    assert result.carbon is not None
    assert result.carbon.emissions_g == pytest.approx(whole.emissions_g, rel=1e-9)
    assert result.carbon.intensity_g_per_kwh == pytest.approx(whole.intensity_g_per_kwh, rel=1e-9)


def test_without_a_store_a_long_run_keeps_only_the_bounded_timeline() -> None:
    clock = FakeClock(wall=T0)
    t = Tracker("nostore", meters=[_meter()], store=False, interval_s=0.5, clock=clock)
    with t:
        clock.advance(3000.0)
    result = t.result
    assert result is not None
    assert 2 * 1024 < len(result.samples) <= 2 * 2048
    assert _energy(result.samples) == pytest.approx(result.energy_j, rel=1e-9)
    # 6,000 reads of 190 W..100 W GPU: 145 W mean, exactly.
    gpu = _by_component(result.samples)[GPU.name]
    assert _energy(gpu) == pytest.approx(145.0 * 3000.0, rel=1e-9)


def _record(store_url: str, seconds: float) -> str:
    clock = FakeClock(wall=T0)
    with RunStore.open(store_url) as store:
        t = Tracker("agg", meters=[_meter()], store=store, interval_s=0.5, clock=clock)
        with t:
            clock.advance(seconds)
    assert t.result is not None
    return t.result.run_id


def test_the_store_downsamples_in_sql_with_exact_sums(store_url: str) -> None:
    run_id = _record(store_url, 400.0)  # 800 reads per component
    with RunStore.open(store_url, read_only=True) as store:
        full = _by_component(store.samples(run_id))
        run = store.get_run(run_id, timeline_points=50)
        finished = store.get_run(run_id)
    points = _by_component(run.samples)
    assert run.energy_j == finished.energy_j
    for name in (GPU.name, CPU.name):
        assert 40 <= len(points[name]) <= 51
        assert _energy(points[name]) == pytest.approx(_energy(full[name]), rel=1e-9)
        assert _gap_s(points[name]) <= _gap_s(full[name])
        assert points[name][0].t_start_s == 0.0
        assert points[name][-1].t_end_s == pytest.approx(400.0)
    # The CPU's recorded gap (1 s in every 10: 40 of them) shows in the merged points' notes.
    assert sum("unreadable" in (p.note or "") for p in points[CPU.name]) >= 35
    assert not any(p.note for p in points[GPU.name])


def test_a_short_run_downsampled_is_its_samples(store_url: str) -> None:
    run_id = _record(store_url, 10.0)
    with RunStore.open(store_url, read_only=True) as store:
        full = store.samples(run_id)
        run = store.get_run(run_id, timeline_points=1000)
    assert len(full) == 2 * 21  # 20 reads and the last one, at stop
    key = lambda s: (s.t_end_s, s.t_start_s, s.component)  # noqa: E731
    assert sorted(run.samples, key=key) == sorted(full, key=key)


@pytest.mark.slow
def test_report_and_show_of_a_long_run_from_the_cli(tmp_path: Path, child_env: dict[str, str]):
    store_path = str(tmp_path / "runs.sqlite")
    run_id = _record(store_path, 2000.0)  # 4,000 samples per component: more than drawn
    out = tmp_path / "long.html"
    for args in (["runs", "show", run_id[:8]], ["report", run_id[:8], "--out", str(out)]):
        done = subprocess.run(
            [sys.executable, "-m", "wattwise", *args, "--store", store_path],
            capture_output=True,
            text=True,
            env=child_env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "Power timeline" in out.read_text()
