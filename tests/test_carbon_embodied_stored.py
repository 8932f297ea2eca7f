"""A stored run's embodied share comes from the allocation recorded with it.

Real trackers write real SQLite stores; the allocation is read from this process's real
environment (SLURM's variables, an empty cgroup root) by wattwise.meters.read_allocation.
"""

from __future__ import annotations

import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from wattwise import ConfigError
from wattwise._records import ComponentEnergy, RunAllocation, RunResult, RunStatus, Scope
from wattwise.carbon import (
    EmbodiedComponent,
    EmbodiedFactor,
    EmbodiedFigures,
    Hardware,
    embodied,
    embodied_factors,
    embodied_for_run,
    embodied_for_runs,
    is_datacenter_gpu,
)
from wattwise.meters import ComponentKind, Method, Source
from wattwise.meters._allocation import CGROUP_ROOT_ENV
from wattwise.meters._base import Component, Meter
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.testing._fake_nvml import FakeGpu, make_fake_nvml
from wattwise.tracking import Tracker

GB = 2**30
DATA = Path(__file__).parent / "data"


@pytest.fixture
def slurm_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This process inside a SLURM job given 1 CPU and 1 GB, and no cgroup limit."""
    empty = tmp_path / "no-cgroup"
    empty.mkdir()
    monkeypatch.setenv(CGROUP_ROOT_ENV, str(empty))
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "1")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE"):
        monkeypatch.delenv(name, raising=False)


def _cpu_meter() -> ReplayMeter:
    cpu = Component("cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "cpu-model"))
    return ReplayMeter([cpu], [TraceInterval("cpu", 0.0, 3600.0, 36000.0)])


def _record(store: RunStore, meter: Meter, seconds: float = 2.0) -> str:
    clock = FakeClock()
    tracker = Tracker(
        "job", meters=[meter], store=store, interval_s=0.5, clock=clock, emissions=False
    )
    tracker.start()
    clock.advance(seconds)
    tracker.stop()
    return tracker.run_id


def _parts(figures: EmbodiedFigures) -> dict[str, EmbodiedComponent]:
    return {c.component: c for c in figures.components}


@pytest.mark.usefixtures("slurm_job")
def test_a_stored_run_is_charged_the_cpus_and_memory_it_was_given(tmp_path: Path) -> None:
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        run = store.get_run(_record(store, _cpu_meter()))
    recorded = run.allocation
    assert recorded is not None
    machine = psutil.cpu_count() or 1
    assert recorded.cpus == 1.0 and "SLURM" in recorded.cpus_from
    assert recorded.memory_limit_bytes == GB and recorded.machine_logical_cpus == machine
    assert recorded.machine_memory_bytes == psutil.virtual_memory().total
    figures = embodied_for_run(run)
    parts = _parts(figures)
    assert parts["cpu"].share == pytest.approx(1 / machine)
    assert parts["ram"].share == pytest.approx(GB / psutil.virtual_memory().total)
    assert any(f"CPUs: 1 of the machine's {machine}, as recorded" in n for n in figures.notes)
    assert any("RAM: the run's memory limit, 1 GB" in n for n in figures.notes)
    assert not any("whole machine" in n for n in figures.notes)
    # less than charging the whole machine (what a run without a record gets)
    whole = embodied_for_run(run, cpus=float(machine), ram_gb=psutil.virtual_memory().total / GB)
    assert figures.embodied_g < whole.embodied_g
    # --cpus still overrides, and says so
    given = embodied_for_run(run, cpus=float(machine))
    assert _parts(given)["cpu"].share == pytest.approx(1.0)
    assert any(f"CPUs: {machine:g} given, not the 1 recorded" in n for n in given.notes)


def _stored_elsewhere(tmp_path: Path, components: tuple[ComponentEnergy, ...]) -> RunResult:
    recorded = RunAllocation(
        cpus=4.0,
        cpus_from="SLURM 4",
        memory_limit_bytes=32 * GB,
        memory_from="SLURM",
        gpus="0",
        gpus_from="CUDA_VISIBLE_DEVICES",
        machine_logical_cpus=64,
        machine_memory_bytes=256 * GB,
    )
    run = RunResult(
        run_id="e" * 32,
        name="elsewhere",
        status=RunStatus.COMPLETED,
        scope=Scope.MACHINE,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        ended_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        duration_s=3600.0,
        energy_j=1.0,
        uncertainty_j=0.1,
        components=components,
        host="a-node-that-is-not-this-one",
        pid=1,
        allocation=recorded,
    )
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        store.finish_run(run)
        return store.get_run(run.run_id)


def _gpu(detail: str, device: str) -> ComponentEnergy:
    return ComponentEnergy(
        name=f"gpu:{device}",
        kind=ComponentKind.GPU,
        source=Source(Method.MEASURED, "nvml-energy", detail),
        counted=True,
        energy_j=1.0,
        uncertainty_j=0.1,
        device=device,
    )


def test_a_run_from_another_host_is_charged_its_recorded_share_of_its_machine(
    tmp_path: Path,
) -> None:
    cpu = ComponentEnergy(
        "cpu:package-0",
        ComponentKind.CPU,
        Source(Method.MEASURED, "rapl", ""),
        counted=True,
        energy_j=1.0,
        uncertainty_j=0.0,
    )
    run = _stored_elsewhere(tmp_path, (cpu, _gpu("NVIDIA H100 80GB HBM3, nvml index 0", "0")))
    assert run.allocation is not None and run.allocation.machine_logical_cpus == 64
    assert run.to_dict()["allocation"]["memory_limit_bytes"] == 32 * GB
    figures = embodied_for_run(run)
    parts = _parts(figures)
    assert parts["cpu"].share == pytest.approx(4 / 64)
    # RAM is counted now: the machine's memory was recorded with the run
    assert parts["ram"].units == pytest.approx(256.0)
    assert parts["ram"].share == pytest.approx(32 / 256)
    # the H100 is a data-centre GPU: charged the gpu-datacenter factor, not the generic one
    assert "gpu" not in parts and parts["gpu-datacenter"].units == 1
    assert not any("RAM not counted" in n for n in figures.notes)
    assert not any("is not this machine" in n for n in figures.notes)
    ram_given = embodied_for_run(run, ram_gb=128.0)
    assert _parts(ram_given)["ram"].share == pytest.approx(0.5)


def test_a_run_without_a_record_keeps_the_whole_machine_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    shutil.copy(DATA / "store-v2.sqlite", path)
    with RunStore.open(str(path)) as store:  # upgraded to schema 3; the runs keep no record
        old = store.get_run("1f9136ac61224c198c419c1eaad13043")
        group = store.get_run("dda73f51995244bf8768d6dcaa535c2b")
    assert old.allocation is None
    figures = embodied_for_run(old)
    assert any("whole machine's (the run's allocation was not recorded" in n for n in figures.notes)
    if old.host == socket.gethostname():
        machine = Hardware.detect()
        cpu = _parts(figures)["cpu"]
        assert cpu.share == 1.0 and cpu.units == machine.cpu_sockets
    # the run with members on two hosts: each host charged from its own (missing) record
    both = embodied_for_run(group)
    assert any("a run over 2 hosts" in n for n in both.notes)
    assert both.duration_s == pytest.approx(group.duration_s)
    summed = embodied_for_runs([old, group])
    assert summed.embodied_g == pytest.approx(figures.embodied_g + both.embodied_g)


@pytest.mark.usefixtures("slurm_job")
def test_a_tracked_h100_is_charged_the_data_centre_gpu_factor(tmp_path: Path) -> None:
    fake = make_fake_nvml([FakeGpu(name="NVIDIA H100 80GB HBM3")])
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        run = store.get_run(_record(store, NvmlMeter(nvml=fake.module)))
    assert [c.kind for c in run.components] == [ComponentKind.GPU]
    parts = _parts(embodied_for_run(run))
    assert "gpu" not in parts
    dc = parts["gpu-datacenter"]
    assert dc.units == 1 and dc.factor.central_kg == 181.0
    generic = embodied_for_run(run, gpus=1, factors={"gpu-datacenter": embodied_factors()["gpu"]})
    assert generic.embodied_g < embodied_for_run(run).embodied_g


@pytest.mark.parametrize(
    ("name", "datacenter"),
    [
        ("NVIDIA H100 80GB HBM3", True),
        ("NVIDIA A100-SXM4-40GB", True),
        ("NVIDIA A800 80GB PCIe", True),
        ("NVIDIA H200", True),
        ("NVIDIA GH200 480GB", True),
        ("NVIDIA B200", True),
        ("NVIDIA GeForce RTX 4090", False),
        ("NVIDIA A10", False),
        ("NVIDIA RTX A1000", False),
        ("Tesla T4", False),
        ("Tesla V100-SXM2-16GB", False),
        ("AMD Instinct MI300X", False),
    ],
)
def test_data_centre_gpus_are_told_by_name(name: str, datacenter: bool) -> None:
    assert is_datacenter_gpu(name) is datacenter


def test_data_centre_gpus_are_a_part_of_the_gpus_used() -> None:
    factors = {
        "gpu": EmbodiedFactor("gpu", "GPU", 50.0, 100.0, 200.0, "test"),
        "gpu-datacenter": EmbodiedFactor("gpu-datacenter", "GPU", 100.0, 200.0, 400.0, "test"),
    }
    server = Hardware(cpu_sockets=1, logical_cpus=8, ram_gb=None, gpus=4)
    year = 365.25 * 24 * 3600
    f = embodied(server, year, gpus=3, datacenter_gpus=2, lifetime_years=4, factors=factors)
    parts = _parts(f)
    assert parts["gpu"].units == 1 and parts["gpu-datacenter"].units == 2
    assert parts["gpu-datacenter"].embodied_g == pytest.approx(200_000 * 2 / 4)
    with pytest.raises(ConfigError, match="data-centre GPUs 4 must be between 0 and the 3"):
        embodied(server, year, gpus=3, datacenter_gpus=4)
