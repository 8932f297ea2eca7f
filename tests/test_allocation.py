"""What the job was given (issue 17 §3): SLURM's environment, CUDA_VISIBLE_DEVICES and
cgroup v2 limits, on fake cgroup trees on disk and fake environments."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattwise.meters._allocation import (
    CGROUP_ROOT_ENV,
    Allocation,
    allocation_memory_reader,
    parse_cpu_max,
    parse_cuda_visible_devices,
    parse_memory_max,
    parse_slurm_id_list,
    parse_slurm_memory_bytes,
    read_allocation,
)
from wattwise.meters._cuda_visible import visible_nvml_indices
from wattwise.meters._estimate import RAM_W_PER_GB, CpuTimes, EstimateMeter
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._registry import detect_meters
from wattwise.testing._fake_nvml import make_fake_nvml
from wattwise.tracking._scope import ProcessTreeShare

GB = 2**30


# -- parsers ------------------------------------------------------------------------------


@given(st.integers(1, 10**9), st.integers(1, 10**7))
def test_cpu_max_is_quota_over_period(quota: int, period: int) -> None:
    assert parse_cpu_max(f"{quota} {period}\n") == pytest.approx(quota / period)


@given(st.integers(1, 10**7))
def test_cpu_max_without_a_quota_is_no_limit(period: int) -> None:
    assert parse_cpu_max(f"max {period}") is None
    assert parse_cpu_max("max") is None


@given(st.text(alphabet="abc -0x.", max_size=12))
def test_cpu_max_refuses_what_is_not_its_format(text: str) -> None:
    parts = text.split()
    valid = (
        1 <= len(parts) <= 2
        and all(p.isdigit() for p in parts[1:])
        and (parts[0] == "max" or parts[0].isdigit())
    )
    if valid:
        return  # digits-only inputs are covered by the tests above
    with pytest.raises(ValueError, match=r"cpu\.max"):
        parse_cpu_max(text)


@pytest.mark.parametrize("text", ["0 100000", "100 0", "-5 100000"])
def test_cpu_max_refuses_non_positive_figures(text: str) -> None:
    with pytest.raises(ValueError, match=r"cpu\.max"):
        parse_cpu_max(text)


@given(st.integers(0, 2**63))
def test_memory_max_is_bytes_or_no_limit(n: int) -> None:
    assert parse_memory_max(f"{n}\n") == n
    assert parse_memory_max("max\n") is None


@given(st.text(max_size=8).filter(lambda t: t.strip() != "max" and not t.strip().isdigit()))
def test_memory_max_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"memory\.max"):
        parse_memory_max(text)


def _as_ranges(ids: list[int]) -> str:
    """Write sorted unique ids the way SLURM does: runs as N-M."""
    parts: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


@given(st.sets(st.integers(0, 64), min_size=1))
def test_slurm_id_lists_expand_their_ranges(ids: set[int]) -> None:
    ordered = sorted(ids)
    assert parse_slurm_id_list(_as_ranges(ordered)) == tuple(ordered)
    assert parse_slurm_id_list("0,2-3") == (0, 2, 3)


@pytest.mark.parametrize("text", ["", "a", "3-1", "1,,2", "0-", "gpu:0"])
def test_slurm_id_lists_refuse_malformed_entries(text: str) -> None:
    with pytest.raises(ValueError):
        parse_slurm_id_list(text)


@given(st.integers(0, 10**7), st.sampled_from(["", "M", "G", "K", "T", "MB", "g"]))
def test_slurm_memory_is_megabytes_unless_a_unit_says(n: int, unit: str) -> None:
    scale = {"": 2**20, "M": 2**20, "MB": 2**20, "G": 2**30, "g": 2**30, "K": 2**10}
    assert parse_slurm_memory_bytes(f"{n}{unit}") == n * scale.get(unit, 2**40)


_HEX = st.text(alphabet="0123456789abcdef", min_size=4, max_size=8)
_ENTRY = st.one_of(
    st.integers(0, 15).map(lambda i: (str(i), "index")),
    _HEX.map(lambda h: (f"GPU-{h}", "gpu-uuid")),
    _HEX.map(lambda h: (f"MIG-{h}", "mig-uuid")),
    st.tuples(_HEX, st.integers(0, 14), st.integers(0, 7)).map(
        lambda t: (f"MIG-GPU-{t[0]}/{t[1]}/{t[2]}", "mig-legacy")
    ),
    st.sampled_from([("-1", "invalid"), ("gpu0", "invalid"), ("GPU-", "invalid")]),
)


@given(st.lists(_ENTRY, min_size=1, max_size=6))
def test_cuda_visible_devices_entries_are_classified(entries: list[tuple[str, str]]) -> None:
    spec = ", ".join(text for text, _ in entries)
    parsed = parse_cuda_visible_devices(spec)
    assert parsed is not None
    assert [(e.text, e.form) for e in parsed] == entries


def test_cuda_visible_devices_unset_and_empty_differ() -> None:
    assert parse_cuda_visible_devices(None) is None  # every device
    assert parse_cuda_visible_devices("  ") == ()  # none


# -- a fake cgroup tree on disk -----------------------------------------------------------


def make_cgroup(root: Path, rel: str, files: dict[str, dict[str, str]]) -> tuple[Path, Path]:
    """A cgroup v2 mount at ``root`` with the process at ``rel``; ``files`` by cgroup path
    relative to the mount ("" for the mount itself). Returns (the /proc/self/cgroup file,
    the process's cgroup directory)."""
    leaf = root / rel.strip("/")
    for d in [leaf, *leaf.parents]:
        if d == root.parent:
            break
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.controllers").write_text("cpu memory\n")
    for where, contents in files.items():
        for name, text in contents.items():
            (root / where / name).write_text(text)
    proc = root.parent / "proc-self-cgroup"
    proc.write_text(f"0::{rel}\n")
    return proc, leaf


def test_a_slurm_job_in_a_cgroup_is_charged_the_smallest_cpu_limit(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc, leaf = make_cgroup(
        root,
        "/system.slice/slurmstepd.scope/job_42/step_0/user/task_0",
        {
            "system.slice/slurmstepd.scope/job_42": {
                "cpu.max": "250000 100000\n",
                "memory.max": f"{8 * GB}\n",
                "memory.current": f"{3 * GB}\n",
            },
            "system.slice/slurmstepd.scope/job_42/step_0": {"memory.max": "max\n"},
        },
    )
    env = {
        "SLURM_JOB_ID": "42",
        "SLURM_CPUS_ON_NODE": "4",
        "SLURM_MEM_PER_NODE": "16384",
        "SLURM_GPUS_ON_NODE": "1",
        "SLURM_JOB_GPUS": "3",
    }
    found = read_allocation(environ=env, cgroup_roots=[root], cgroup_file=proc, affinity=range(16))
    assert found.cgroup == str(leaf)
    assert (found.affinity_cpus, found.slurm_cpus, found.cgroup_cpu_quota) == (16, 4, 2.5)
    assert found.cpus == 2.5 and "cgroup cpu.max" in found.cpus_from
    # The conflict is shown with the rule that resolved it.
    assert any("CPU limits differ" in n and "2.5 charged, the smallest" in n for n in found.notes)
    assert found.memory_limit_bytes == 8 * GB  # the cgroup's 8 GB, under SLURM's 16 GB
    assert found.slurm_memory_bytes == 16 * GB
    assert found.memory_cgroup == str(root / "system.slice/slurmstepd.scope/job_42")
    assert any("memory limits differ" in n for n in found.notes)
    # No CUDA_VISIBLE_DEVICES: SLURM's GPU list names the job's one GPU.
    assert found.gpus == "3" and found.gpus_from.startswith("SLURM_JOB_GPUS")
    assert found.slurm_job_id == "42"
    assert json.loads(json.dumps(found.to_dict()))["cpus"] == 2.5


def test_slurm_variables_outside_a_job_are_ignored(tmp_path: Path) -> None:
    env = {"SLURM_CPUS_ON_NODE": "1", "SLURM_MEM_PER_NODE": "10"}
    found = read_allocation(environ=env, cgroup_roots=[tmp_path], affinity=range(8))
    assert (found.cpus, found.slurm_cpus, found.memory_limit_bytes) == (8, None, None)
    assert found.cgroup is None and found.notes == ()


def test_slurm_memory_per_cpu_and_no_gpus(tmp_path: Path) -> None:
    env = {
        "SLURM_JOB_ID": "7",
        "SLURM_CPUS_PER_TASK": "2",
        "SLURM_MEM_PER_CPU": "1G",
        "SLURM_GPUS_ON_NODE": "0",
    }
    found = read_allocation(environ=env, cgroup_roots=[tmp_path], affinity=range(8))
    assert found.cpus == 2 and found.cpus_from == "SLURM, 2 CPUs"
    assert found.memory_limit_bytes == 2 * GB  # 1 GB per CPU x 2 CPUs
    assert found.memory_cgroup is None
    assert found.gpus == ""  # none: SLURM gave no GPU


def test_cuda_visible_devices_wins_over_slurm_and_a_count_mismatch_is_noted() -> None:
    env = {
        "SLURM_JOB_ID": "7",
        "SLURM_GPUS_ON_NODE": "1",
        "SLURM_JOB_GPUS": "0",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }
    found = read_allocation(environ=env, cgroup_roots=[], affinity=range(2))
    assert found.gpus == "0,1" and found.gpus_from == "CUDA_VISIBLE_DEVICES"
    assert any("SLURM_GPUS_ON_NODE=1" in n and "names 2" in n for n in found.notes)


def test_a_container_cgroup_namespace_reads_the_mount_itself(tmp_path: Path) -> None:
    # Docker/Kubernetes with a private cgroup namespace: /proc/self/cgroup says "0::/"
    # and the pod's limits are the mount's own files.
    root = tmp_path / "cgroup"
    proc, _ = make_cgroup(root, "/", {"": {"cpu.max": "50000 100000\n", "memory.max": f"{GB}\n"}})
    found = read_allocation(environ={}, cgroup_roots=[root], cgroup_file=proc, affinity=range(4))
    assert found.cpus == 0.5 and found.memory_limit_bytes == GB
    assert found.cgroup == str(root)


def test_an_unreadable_limit_is_noted_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc, _ = make_cgroup(root, "/pod", {"pod": {"cpu.max": "lots\n"}})
    found = read_allocation(environ={}, cgroup_roots=[root], cgroup_file=proc, affinity=range(4))
    assert found.cpus == 4 and found.cgroup_cpu_quota is None
    assert any("cpu.max unreadable" in n for n in found.notes)


# -- the estimate charges the allocation, not the node --------------------------------------


def _allocation(**changes: object) -> Allocation:
    base = read_allocation(environ={}, cgroup_roots=[], affinity=range(os.cpu_count() or 1))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_cpu_estimate_charges_the_quota_at_its_own_utilisation() -> None:
    visible = len(os.sched_getaffinity(0))
    quota = 0.5
    allocation = _allocation(cpus=quota, cpus_from="cgroup cpu.max, 0.5 CPUs")
    busy = [0.0]

    def times() -> CpuTimes:
        # The job keeps half a CPU busy: all of its quota.
        return CpuTimes(busy_s=busy[0], total_s=busy[0] / quota * visible)

    meter = EstimateMeter(
        cpu_tdp_w=100.0, cpu_threads=10, include_ram=False, cpu_times=times, allocation=allocation
    )
    (component,) = meter.start(0.0)
    assert meter.cpu_model is not None
    assert meter.cpu_model.visible_cpus == quota
    assert meter.cpu_model.max_power_w == pytest.approx(100.0 * quota / 10)
    assert "allocation: cgroup cpu.max" in component.source.detail
    busy[0] = 0.5
    (reading,) = meter.read(1.0)
    assert reading.utilisation == pytest.approx(1.0)  # of the quota, not of the node
    assert reading.energy_j == pytest.approx(100.0 * quota / 10)


def test_the_ram_estimate_charges_the_cgroups_memory_not_the_nodes(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    proc, leaf = make_cgroup(
        root, "/kubepods/pod1", {"kubepods/pod1": {"memory.max": f"{2 * GB}\n"}}
    )
    (leaf / "memory.current").write_text(f"{GB}\n")
    allocation = read_allocation(environ={}, cgroup_roots=[root], cgroup_file=proc)
    meter = EstimateMeter(include_cpu=False, allocation=allocation)
    (component,) = meter.start(0.0)
    assert f"memory.current of {leaf}" in component.source.detail
    (reading,) = meter.read(10.0)
    assert reading.energy_j == pytest.approx(RAM_W_PER_GB * 1.0 * 10.0)
    # Past the limit (page cache counted by the kernel), the limit is charged.
    (leaf / "memory.current").write_text(f"{5 * GB}\n")
    (reading,) = meter.read(20.0)
    assert reading.energy_j == pytest.approx(RAM_W_PER_GB * (1.0 + 2.0) / 2 * 10.0)


def test_a_cgroup_without_a_readable_memory_current_charges_the_machines_use_capped(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cgroup"
    proc, leaf = make_cgroup(root, "/kubepods/pod2", {"kubepods/pod2": {"memory.max": f"{GB}\n"}})
    assert not (leaf / "memory.current").exists()
    allocation = read_allocation(environ={}, cgroup_roots=[root], cgroup_file=proc)
    assert allocation.memory_limit_bytes == GB
    meter = EstimateMeter(include_cpu=False, allocation=allocation)
    (component,) = meter.start(0.0)
    assert f"{leaf} has no readable memory.current" in component.source.detail
    (reading,) = meter.read(1.0)
    assert reading.energy_j is not None
    assert 0 < reading.energy_j <= RAM_W_PER_GB * 1.0 + 1e-12


def test_a_memory_current_that_goes_away_mid_run_is_read_as_the_machines_capped(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cgroup"
    proc, leaf = make_cgroup(root, "/kubepods/pod3", {"kubepods/pod3": {"memory.max": f"{GB}\n"}})
    (leaf / "memory.current").write_text(f"{GB // 4}\n")
    allocation = read_allocation(environ={}, cgroup_roots=[root], cgroup_file=proc)
    reader = allocation_memory_reader(allocation, lambda: 3 * GB)
    assert reader() == GB // 4
    (leaf / "memory.current").unlink()
    assert reader() == GB


def test_with_only_slurms_memory_the_machines_use_is_capped() -> None:
    allocation = _allocation(memory_limit_bytes=GB, memory_from="SLURM_MEM_PER_NODE")
    meter = EstimateMeter(include_cpu=False, allocation=allocation)
    meter.start(0.0)
    (reading,) = meter.read(1.0)
    assert reading.energy_j is not None
    assert reading.energy_j <= RAM_W_PER_GB * 1.0 + 1e-12


# -- GPUs: only those allocated -------------------------------------------------------------


def test_nvml_counts_only_the_gpus_slurm_allocated() -> None:
    fake = make_fake_nvml(8)
    env = {"SLURM_JOB_ID": "9", "SLURM_GPUS_ON_NODE": "2", "SLURM_JOB_GPUS": "2,5"}
    meter = NvmlMeter(nvml=fake.module, environ=env)
    components = meter.start(0.0)
    assert [(c.name, c.device) for c in components] == [("gpu:0", "2"), ("gpu:1", "5")]
    assert "SLURM_JOB_GPUS (NVML indices): '2,5'" in meter.probe().reason
    meter.close()
    none = NvmlMeter(nvml=fake.module, environ={"SLURM_JOB_ID": "9", "SLURM_GPUS_ON_NODE": "0"})
    assert not none.probe().available


def test_detection_hands_one_allocation_to_every_meter(tmp_path: Path) -> None:
    fake = make_fake_nvml(4)
    env = {"SLURM_JOB_ID": "1", "SLURM_CPUS_ON_NODE": "1", "CUDA_VISIBLE_DEVICES": "1"}
    found = detect_meters(powercap_root=str(tmp_path), nvml=fake.module, environ=env)
    assert found.allocation is not None and found.allocation.slurm_job_id == "1"
    by_name = {p.meter: p for p in found.probes}
    assert by_name["nvml"].components == ("gpu:0",)
    (estimate,) = [m for m in found.meters if isinstance(m, EstimateMeter)]
    assert estimate.allocation is found.allocation
    assert found.allocation.cpus == 1


# -- `wattwise meters` says what it found ---------------------------------------------------


def _own_cgroup_rel() -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    return next((ln[3:].strip() for ln in lines if ln.startswith("0::")), None)


@pytest.mark.skipif(_own_cgroup_rel() is None, reason="no cgroup v2 line in /proc/self/cgroup")
def test_meters_shows_the_allocation_and_its_conflicts(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    rel = str(_own_cgroup_rel())
    root = tmp_path / "cg[/b]roup"  # not ours: printed as written, never as markup
    where = rel.strip("/")
    make_cgroup(root, rel, {where: {"cpu.max": "150000 100000\n", "memory.max": f"{GB}\n"}})
    env = {
        **child_env,
        CGROUP_ROOT_ENV: str(root),
        "SLURM_JOB_ID": "4242",
        "SLURM_CPUS_ON_NODE": "4",
        "WATTWISE_POWERCAP_ROOT": str(tmp_path / "no-powercap"),
        "COLUMNS": "400",  # no wrapping inside the path checked below
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    argv = [sys.executable, "-m", "wattwise", "meters"]
    out = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    allocation = json.loads(out.stdout)["allocation"]
    affinity = len(os.sched_getaffinity(0))
    assert allocation["slurm_job_id"] == "4242"
    assert allocation["cgroup_cpu_quota"] == 1.5
    assert allocation["cpus"] == min(1.5, affinity)
    assert allocation["memory_limit_bytes"] == GB
    assert any("CPU limits differ" in n for n in allocation["notes"])
    text = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert "allocation: SLURM job 4242; CPUs:" in flat
    assert "allocation: memory: 1 GB limit (cgroup memory.max of" in flat
    assert "cg[/b]roup" in text.stdout
    assert "CPU limits differ" in flat


def test_process_scope_shares_the_jobs_memory_not_the_nodes() -> None:
    rss = psutil.Process().memory_info().rss
    # The job's memory in use (a cgroup's memory.current) is 4 x this process's RSS.
    share = ProcessTreeShare(os.getpid(), cgroup_roots=(), memory_used_bytes=lambda: 4 * rss)
    share.start()
    assert share.memory_share() == pytest.approx(0.25, rel=0.2)


# -- CUDA_VISIBLE_DEVICES resolution, for any list of devices and any spec ---------------------

_UUIDS = [f"GPU-{i:02x}{'ab' * 3}-0000-0000-0000-00000000000{i}" for i in range(6)]


@given(
    st.integers(0, 6),
    st.lists(
        st.one_of(
            st.integers(-1, 8).map(str),
            st.integers(0, 5).map(lambda i: _UUIDS[i][: 6 + i % 4]),
            st.just("MIG-abc"),
            st.just("x"),
        ),
        max_size=6,
    ),
)
def test_visible_devices_are_a_prefix_of_the_list_cuda_would_show(
    count: int, entries: list[str]
) -> None:
    uuids = _UUIDS[:count]
    spec = ",".join(entries)
    visible, note = visible_nvml_indices(spec, uuids)
    assert len(set(visible)) == len(visible)  # never a device twice
    assert all(0 <= i < count for i in visible)
    parsed = parse_cuda_visible_devices(spec) or ()
    assert len(visible) <= len(parsed)
    # The list stops at the first entry CUDA refuses, and only then is there a note.
    assert (note is None) == (len(visible) == len(parsed))
    for entry, index in zip(parsed, visible, strict=False):
        if entry.form == "index":
            assert int(entry.text) == index
        else:
            assert uuids[index].lower().startswith(entry.text.lower())
