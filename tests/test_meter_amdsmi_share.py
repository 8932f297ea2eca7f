"""An AMD GPU's energy per process (issue 19 §2): the amdsmi meter's process-scope share
from AMD SMI's per-process engine time, on the fake amdsmi's process list in each of its
shapes; the whole device, labelled, where AMD SMI gives none this process can match."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wattwise.meters._amd_share import ProcessEngineShare, own_pid_namespace
from wattwise.meters._amdsmi import AmdSmiMeter
from wattwise.testing._fake_amdsmi import (
    STATUS_NO_PERM,
    STATUS_NOT_SUPPORTED,
    AmdSmiLibraryException,
    AmdSmiParameterException,
    FakeAmdGpu,
    FakeAmdSmi,
    make_fake_amdsmi,
)
from wattwise.testing._fake_clock import FakeClock
from wattwise.tracking import Tracker


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


def _proc_tree(root: Path, nspid: str) -> Path:
    """A /proc with just self/status, its NSpid line as given."""
    (root / "self").mkdir(parents=True)
    (root / "self" / "status").write_text(f"Name:\tpython\nPid:\t4242\nNSpid:\t{nspid}\n")
    return root


def _handle(fake: FakeAmdSmi, index: int = 0) -> object:
    fake.module.amdsmi_init(fake.module.AmdSmiInitFlags.INIT_AMD_GPUS)
    return fake.module.amdsmi_get_processor_handles()[index]


# -- the fake's process list, as each amdsmi version gives it ------------------------------


def test_the_fake_counts_each_process_gfx_time_on_its_clock() -> None:
    fake = make_fake_amdsmi(1)
    handle = _handle(fake)
    assert fake.module.amdsmi_get_gpu_process_list(handle) == []
    fake.set_processes(0, {101: 0.6, 202: 0.2})
    fake.advance(2.0)
    listed = {p["pid"]: p for p in fake.module.amdsmi_get_gpu_process_list(handle)}
    assert {pid: p["engine_usage"]["gfx"] for pid, p in listed.items()} == {
        101: 1_200_000_000,
        202: 400_000_000,
    }
    assert set(listed[101]) == {
        "name",
        "pid",
        "mem",
        "engine_usage",
        "memory_usage",
        "cu_occupancy",
    }
    assert listed[101]["cu_occupancy"] == 0  # DRM work occupies no KFD compute units
    # ROCm compute: the gfx counter does not move; the CUs it occupies show.
    fake.set_processes(0, {101: 0.5}, engine="kfd")
    fake.advance(1.0)
    (only,) = fake.module.amdsmi_get_gpu_process_list(handle)
    assert only["engine_usage"]["gfx"] == 1_200_000_000
    assert only["cu_occupancy"] == 152  # half of an MI300X's 304 CUs


def test_the_fake_gives_the_older_shapes() -> None:
    fake = make_fake_amdsmi(1, api="6.1")
    handle = _handle(fake)
    fake.set_processes(0, {101: 1.0})
    fake.advance(1.0)
    (process,) = fake.module.amdsmi_get_gpu_process_list(handle)
    assert isinstance(process, ctypes.c_uint32) and process.value == 101
    info = fake.module.amdsmi_get_gpu_process_info(handle, process)
    assert info["engine_usage"]["gfx"] == 1_000_000_000 and "cu_occupancy" not in info
    with pytest.raises(AmdSmiParameterException):
        fake.module.amdsmi_get_gpu_process_info(handle, 101)  # a handle, not an int
    with pytest.raises(AmdSmiLibraryException):  # the process ended
        fake.module.amdsmi_get_gpu_process_info(handle, ctypes.c_uint32(999))
    newer = make_fake_amdsmi(1, api="6.2")
    newer_handle = _handle(newer)
    newer.set_processes(0, {7: 0.5})
    (entry,) = newer.module.amdsmi_get_gpu_process_list(newer_handle)
    assert "cu_occupancy" not in entry
    # Autospec'd: amdsmi 6.1.2 and newer have no amdsmi_get_gpu_process_info.
    with pytest.raises(AttributeError):
        _ = newer.module.amdsmi_get_gpu_process_info


def test_the_fake_fails_the_list_where_amdsmi_does() -> None:
    fake = make_fake_amdsmi([FakeAmdGpu(process_list_status=STATUS_NOT_SUPPORTED)])
    with pytest.raises(AmdSmiLibraryException) as raised:
        fake.module.amdsmi_get_gpu_process_list(_handle(fake))
    assert raised.value.err_code == STATUS_NOT_SUPPORTED


# -- the share ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["7.0", "6.2", "6.1"])
def test_two_processes_share_the_gpu_by_their_gfx_time(api: str) -> None:
    fake = make_fake_amdsmi(1, api=api)
    handle = _handle(fake)
    fake.set_processes(0, {101: 0.5})
    fake.advance(1.0)  # before the start: belongs to no interval
    a = ProcessEngineShare(fake.module, handle)
    b = ProcessEngineShare(fake.module, handle)
    assert a.supported and (a.read({101}), b.read({202})) == (0.0, 0.0)
    fake.set_processes(0, {101: 0.6, 202: 0.2})
    fake.advance(1.0)
    assert a.read({101}) == pytest.approx(0.75) and b.read({202}) == pytest.approx(0.25)
    # An idle interval (no engine time) keeps the last share: the two still add up to 1.
    fake.set_processes(0, {101: 0.0, 202: 0.0})
    fake.advance(1.0)
    assert a.read({101}) + b.read({202}) == pytest.approx(1.0)
    # A tree of several pids adds up its processes.
    fake.set_processes(0, {101: 0.3, 102: 0.3, 202: 0.3})
    fake.advance(1.0)
    assert a.read({101, 102}) == pytest.approx(2 / 3)


def test_a_counter_that_goes_back_counts_from_zero_never_negative() -> None:
    fake = make_fake_amdsmi(1)
    handle = _handle(fake)
    fake.set_processes(0, {101: 0.5, 202: 0.5})
    fake.advance(10.0)  # 5 s of gfx time each before the start
    share = ProcessEngineShare(fake.module, handle)
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(0.5)
    # pid 101 is now a new process (its counter restarts) that works 0.2 s in this second;
    # 202 works 0.5 s. The old counter (5.5 s) must not make 101's gain negative.
    fake.restart_process(0, 101)
    fake.set_processes(0, {101: 0.2, 202: 0.5})
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(0.2 / 0.7)
    assert share.read({101}) == pytest.approx(0.2 / 0.7)  # nothing new since: kept
    # A process that leaves and comes back under the same pid counts from 0 too.
    fake.set_processes(0, {202: 0.5})
    fake.advance(1.0)
    assert share.read({101}) == 0.0
    fake.set_processes(0, {101: 0.5, 202: 0.5})
    fake.restart_process(0, 101)
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(0.5)


def test_rocm_compute_is_split_by_occupied_cus_where_gfx_time_is_silent() -> None:
    fake = make_fake_amdsmi(1)
    handle = _handle(fake)
    share = ProcessEngineShare(fake.module, handle)
    fake.set_processes(0, {101: 0.75, 202: 0.25}, engine="kfd")
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(228 / 304)
    # Occupancy wins over a little DRM gfx time (which does not see the compute): 303 draws
    # one frame's worth, and must not take the GPU from the two computing.
    busy = {101: 0.75, 202: 0.25, 303: 0.01}
    fake.set_processes(0, busy, engine={101: "kfd", 202: "kfd", 303: "gfx"})
    fake.advance(1.0)
    assert share.read({303}) == 0.0
    assert share.read({101}) == pytest.approx(228 / 304)
    fake.set_processes(0, {303: 0.01})  # the computing ended: gfx time is all there is
    fake.advance(1.0)
    assert share.read({303}) == pytest.approx(1.0)
    # amdsmi before 7.0 has no cu_occupancy: nothing to split by, the share stays as it was.
    older = make_fake_amdsmi(1, api="6.2")
    older_share = ProcessEngineShare(older.module, _handle(older))
    older.set_processes(0, {101: 0.75, 202: 0.25}, engine="kfd")
    older.advance(1.0)
    assert older_share.read({101}) == 0.0


@pytest.mark.parametrize("status", [STATUS_NOT_SUPPORTED, STATUS_NO_PERM])
def test_an_unsupported_list_is_the_whole_device(status: int) -> None:
    fake = make_fake_amdsmi([FakeAmdGpu(process_list_status=status)])
    share = ProcessEngineShare(fake.module, _handle(fake))
    assert not share.supported and "AMDSMI_STATUS_" in share.why_not
    assert share.read({101}) == 1.0


def test_a_failed_read_keeps_the_last_share() -> None:
    fake = make_fake_amdsmi(1)
    handle = _handle(fake)
    share = ProcessEngineShare(fake.module, handle)
    fake.set_processes(0, {101: 0.6, 202: 0.2})
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(0.75)
    fake.gpus[0].process_list_status = STATUS_NO_PERM
    fake.advance(1.0)
    assert share.read({101}) == pytest.approx(0.75)


def test_own_pid_namespace_reads_nspid(tmp_path: Path) -> None:
    assert not own_pid_namespace(_proc_tree(tmp_path / "host", "4242"))
    assert own_pid_namespace(_proc_tree(tmp_path / "pod", "4242\t7"))
    assert not own_pid_namespace(tmp_path / "missing")  # unreadable: assume the host's


# -- through the real Tracker ------------------------------------------------------------


def _tracked(
    fake: FakeAmdSmi, scope: str, proc_root: Path, pid: int | None = None
) -> tuple[Tracker, FakeClock]:
    clock = FakeClock()
    meter = AmdSmiMeter(amdsmi=fake.module, environ={}, proc_root=proc_root)
    tracker = Tracker(
        f"amd-{scope}-{pid}",
        meters=[meter],
        store=False,
        scope=scope,
        pid=pid,
        interval_s=0.5,
        clock=clock,
    )
    return tracker, clock


@pytest.mark.parametrize(
    ("api", "engine"),
    [("7.0", "gfx"), ("6.1", "gfx"), ("7.0", "kfd")],
    ids=["gfx-time", "gfx-time-amdsmi-6.1", "rocm-compute-cus"],
)
def test_process_scope_splits_an_amd_gpu_and_counts_nothing_twice(
    two_pids: tuple[int, int], tmp_path: Path, api: str, engine: str
) -> None:
    fake = make_fake_amdsmi(1, api=api)
    host = _proc_tree(tmp_path, "4242")
    me, other_pid = two_pids
    runs = [_tracked(fake, "process", host, me), _tracked(fake, "process", host, other_pid)]
    machine = _tracked(fake, "machine", host)
    everyone = [*runs, machine]
    for tracker, _ in everyone:
        tracker.start()
    # 3:1 in gfx time, or in CUs occupied (228 and 76 of 304).
    fake.set_processes(0, {me: 0.75, other_pid: 0.25}, engine=engine)
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
    assert whole == pytest.approx(400.0, abs=1e-2)
    assert mine == pytest.approx(300.0, abs=1e-2) and theirs == pytest.approx(100.0, abs=1e-2)
    assert mine + theirs == pytest.approx(whole, abs=1e-2)
    (gpu,) = results[0].components
    assert "process scope: the process tree's share of the compute units" in gpu.source.detail
    assert not fake.initialised


@pytest.mark.parametrize(
    ("gpu", "nspid", "words"),
    [
        (
            FakeAmdGpu(process_list_status=STATUS_NOT_SUPPORTED),
            "4242",
            "AMDSMI_STATUS_NOT_SUPPORTED",
        ),
        (FakeAmdGpu(process_list_status=STATUS_NO_PERM), "4242", "AMDSMI_STATUS_NO_PERM"),
        (FakeAmdGpu(), "4242\t7", "pid namespace of its own"),
    ],
)
def test_without_matching_process_time_the_whole_device_is_charged_and_labelled(
    two_pids: tuple[int, int], tmp_path: Path, gpu: FakeAmdGpu, nspid: str, words: str
) -> None:
    fake = make_fake_amdsmi([gpu])
    me, other_pid = two_pids
    tracker, clock = _tracked(fake, "process", _proc_tree(tmp_path, nspid), me)
    with tracker:
        fake.set_processes(0, {me: 0.6, other_pid: 0.2})
        fake.advance(1.0, power_w=100.0)
        clock.advance(1.0)
    assert tracker.result is not None
    assert tracker.result.energy_j == pytest.approx(100.0, abs=1e-2)
    (component,) = tracker.result.components
    assert "process scope: the whole device" in component.source.detail
    assert words in component.source.detail
    meter = AmdSmiMeter(amdsmi=fake.module, environ={}, proc_root=_proc_tree(tmp_path / "p", nspid))
    probe = meter.probe()
    assert "gpu:0: process scope charges the whole device" in probe.reason
