"""GPU energy per process (issue 17 §4): a shared GPU's energy split by NVML's per-process
utilisation samples, on the faithful fake NVML; whole device, labelled, where the driver
gives none; MIG devices never crash."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pynvml
import pytest

from wattwise.meters._gpu_share import ProcessUtilisationShare
from wattwise.meters._nvml import NvmlMeter
from wattwise.testing import FakeClock
from wattwise.testing._fake_nvml import (
    PROCESS_SAMPLE_BUFFER,
    FakeGpu,
    FakeMig,
    FakeNvml,
    make_fake_nvml,
)
from wattwise.tracking._tracker import Tracker


@pytest.fixture(autouse=True)
def _clean_cuda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)


@pytest.fixture
def two_pids() -> Iterator[tuple[int, int]]:
    """Two real processes, siblings (neither in the other's tree), that share the GPU."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)
    ]
    try:
        yield procs[0].pid, procs[1].pid
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _handle(fake: FakeNvml, index: int = 0) -> object:
    fake.module.nvmlInit()
    return fake.module.nvmlDeviceGetHandleByIndex(index)


# -- the fake driver serves per-process samples as NVML does ------------------------------


def test_the_fake_keeps_a_sample_per_period_for_each_busy_process() -> None:
    fake = make_fake_nvml(1)
    handle = _handle(fake)
    with pytest.raises(pynvml.NVMLError_NotFound):  # nothing ran yet
        fake.module.nvmlDeviceGetProcessUtilization(handle, 0)
    fake.set_processes(0, {101: 0.6, 202: 0.2, 303: 0.0})
    fake.advance(1.0)
    samples = fake.module.nvmlDeviceGetProcessUtilization(handle, 0)
    assert all(isinstance(s, pynvml.c_nvmlProcessUtilizationSample_t) for s in samples)
    by_pid: dict[int, list[int]] = {}
    for s in samples:
        by_pid.setdefault(s.pid, []).append(s.smUtil)
    # 1/6 s periods: 6 samples each; an idle process is not reported.
    assert by_pid == {101: [60] * 6, 202: [20] * 6}
    stamps = sorted({s.timeStamp for s in samples})
    assert len(stamps) == 6 and stamps[-1] - stamps[0] == pytest.approx(5e6 / 6, abs=2)
    with pytest.raises(pynvml.NVMLError_NotFound):  # none newer than the last seen
        fake.module.nvmlDeviceGetProcessUtilization(handle, stamps[-1])
    fake.advance(100.0)
    assert len(fake.module.nvmlDeviceGetProcessUtilization(handle, 0)) == PROCESS_SAMPLE_BUFFER


def test_the_fake_refuses_per_process_samples_where_real_drivers_do() -> None:
    mig = FakeGpu(mig_mode=True, mig_devices=(FakeMig(profile="3g.40gb", slices=3),))
    fake = make_fake_nvml([FakeGpu(process_samples=False), mig])
    old = _handle(fake, 0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.module.nvmlDeviceGetProcessUtilization(old, 0)
    board = fake.module.nvmlDeviceGetHandleByIndex(1)
    instance = fake.module.nvmlDeviceGetMigDeviceHandleByIndex(board, 0)
    for handle in (board, instance):
        with pytest.raises(pynvml.NVMLError_NotSupported):
            fake.module.nvmlDeviceGetProcessUtilization(handle, 0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.module.nvmlDeviceGetUtilizationRates(board)
    with pytest.raises(TypeError):  # autospec'd from pynvml: the timestamp is required
        fake.module.nvmlDeviceGetProcessUtilization(board)


# -- the share ------------------------------------------------------------------------------


def test_two_processes_share_a_gpu_by_their_utilisation() -> None:
    fake = make_fake_nvml(1)
    handle = _handle(fake)
    fake.set_processes(0, {101: 0.5})
    fake.advance(1.0)  # before the start: belongs to no interval
    a, b = (
        ProcessUtilisationShare(fake.module, handle),
        ProcessUtilisationShare(fake.module, handle),
    )
    assert (a.read({101}), b.read({202})) == (0.0, 0.0)  # no sample since: 0 to begin with
    fake.set_processes(0, {101: 0.6, 202: 0.2})
    fake.advance(1.0)
    share_a, share_b = a.read({101}), b.read({202})
    assert share_a == pytest.approx(0.75) and share_b == pytest.approx(0.25)
    # An idle interval (NotFound) keeps the last share: the two still add up to 1.
    fake.set_processes(0, {})
    fake.advance(1.0)
    assert a.read({101}) + b.read({202}) == pytest.approx(1.0)
    # A tree of several pids adds up its processes.
    fake.set_processes(0, {101: 0.3, 102: 0.3, 202: 0.3})
    fake.advance(1.0)
    assert a.read({101, 102}) == pytest.approx(2 / 3)


def _tracked(fake: FakeNvml, scope: str, pid: int | None = None) -> tuple[Tracker, FakeClock]:
    clock = FakeClock()
    tracker = Tracker(
        f"gpu-{scope}-{pid}",
        meters=[NvmlMeter(nvml=fake.module)],
        store=False,
        scope=scope,
        pid=pid,
        interval_s=0.5,
        clock=clock,
    )
    return tracker, clock


def test_process_scope_splits_a_shared_gpu_and_counts_nothing_twice(
    two_pids: tuple[int, int],
) -> None:
    fake = make_fake_nvml(1)
    me, other_pid = two_pids
    runs = [_tracked(fake, "process", me), _tracked(fake, "process", other_pid)]
    machine = _tracked(fake, "machine")
    everyone = [*runs, machine]
    for tracker, _ in everyone:
        tracker.start()
    fake.set_processes(0, {me: 0.6, other_pid: 0.2})
    for _ in range(4):  # 2 s at 200 W: 400 J on the board
        fake.advance(0.5, power_w=200.0)
        for _, clock in everyone:
            clock.advance(0.5)
    results = []
    for tracker, _ in everyone:
        tracker.stop()
        assert tracker.result is not None
        results.append(tracker.result)
    mine, theirs, whole = (r.energy_j for r in results)
    assert whole == pytest.approx(400.0)
    assert mine == pytest.approx(300.0) and theirs == pytest.approx(100.0)
    assert mine + theirs == pytest.approx(whole)
    (gpu,) = results[0].components
    assert "per-process SM utilisation samples" in gpu.source.detail


def test_without_per_process_samples_the_whole_device_is_charged_and_labelled(
    two_pids: tuple[int, int],
) -> None:
    fake = make_fake_nvml([FakeGpu(process_samples=False)])
    me, other_pid = two_pids
    tracker, clock = _tracked(fake, "process", me)
    with tracker:
        fake.set_processes(0, {me: 0.6, other_pid: 0.2})
        fake.advance(1.0, power_w=100.0)
        clock.advance(1.0)
    assert tracker.result is not None
    assert tracker.result.energy_j == pytest.approx(100.0)
    (gpu,) = tracker.result.components
    assert "process scope: the whole device" in gpu.source.detail
    assert "NotSupported" in gpu.source.detail


def test_mig_devices_in_process_scope_are_charged_their_slices_without_crashing(
    monkeypatch: pytest.MonkeyPatch, two_pids: tuple[int, int]
) -> None:
    # Zeus issue 109: per-process queries on MIG crash it. Here they are NotSupported, so
    # the instance keeps its slice share, the board in MIG mode seen whole is charged whole.
    migs = (
        FakeMig(profile="3g.40gb", slices=3),
        FakeMig(profile="4g.40gb", slices=4, gpu_instance_id=2),
    )
    fake = make_fake_nvml([FakeGpu(mig_mode=True, mig_devices=migs), FakeGpu(mig_mode=True)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", fake.gpus[0].mig_devices[0].uuid)
    me, other_pid = two_pids
    tracker, clock = _tracked(fake, "process", me)
    with tracker:
        fake.set_processes(0, {me: 0.9, other_pid: 0.9})
        fake.advance(1.0, power_w=70.0)
        clock.advance(1.0)
    assert tracker.result is not None
    assert tracker.result.energy_j == pytest.approx(30.0)  # 3/7 of 70 J
    (gpu,) = tracker.result.components
    assert "NVML gives no per-process utilisation for it" in gpu.source.detail
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    meter = NvmlMeter(nvml=fake.module)
    components = meter.start(0.0)
    assert len(components) == 2
    assert meter.process_shares({me}) == {}  # both boards in MIG mode: whole
    assert all("process scope: the whole device" in c.source.detail for c in components)
    meter.close()
