"""Each sensor's uncertainty, and how a run's components combine into its total's.

RAPL components state a one-sigma relative uncertainty by CPU generation (they stated 0);
components of one sensor or model add linearly, different sensors in quadrature.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._cli import wattwise

from wattwise._records import ComponentEnergy, combined_uncertainty, counted_totals
from wattwise.meters._base import ComponentKind, Method, Source
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._rapl import CpuIdentity, RaplMeter
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.testing._fake_nvml import make_fake_nvml
from wattwise.testing._fake_powercap import FakePowercap
from wattwise.tracking._tracker import Tracker

SANDY_BRIDGE = CpuIdentity("GenuineIntel", 6, 0x2A)  # Core i7-2600K
SKYLAKE = CpuIdentity("GenuineIntel", 6, 0x5E)  # Core i7-6700K (client)
SKYLAKE_SP = CpuIdentity("GenuineIntel", 6, 0x55)  # Xeon Gold 6148 (server)
ZEN2 = CpuIdentity("AuthenticAMD", 0x17, 0x31)  # EPYC 7742 (Rome)

RAPL = Source(Method.MEASURED, "rapl-powercap")
NVML = Source(Method.MEASURED, "nvml-energy-counter")


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "sys")


def comp(
    name: str, source: Source, energy_j: float, uncertainty_j: float, *, counted: bool = True
) -> ComponentEnergy:
    return ComponentEnergy(name, ComponentKind.CPU, source, counted, energy_j, uncertainty_j)


# -- each RAPL zone's figure, by generation ---------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "package", "dram"),
    [
        (SANDY_BRIDGE, 0.10, 0.20),  # a model (Hähnel 2012, Hackenberg 2013, Desrochers 2016)
        (SKYLAKE, 0.05, 0.15),  # package measured; client DRAM modelled, offset
        (SKYLAKE_SP, 0.05, 0.05),  # Haswell-EP and later servers measure DRAM too
        (ZEN2, 0.15, 0.20),  # AMD's power model (Schöne et al. 2021)
        (CpuIdentity(), 0.15, 0.20),  # not identified: the widest figure of each kind
    ],
)
def test_rapl_components_carry_their_generations_uncertainty(
    fake: FakePowercap, cpu: CpuIdentity, package: float, dram: float
) -> None:
    # Before: every RAPL component stated 0, whatever the CPU.
    fake.add_socket(dram=True)
    fake.add_socket(dram=True)
    by_name = {c.name: c for c in RaplMeter(root=fake.root, cpu=cpu).start(0.0)}
    for socket in ("0", "1"):
        assert by_name[f"cpu:package-{socket}"].relative_uncertainty == package
        assert by_name[f"cpu:dram-{socket}"].relative_uncertainty == dram
        assert by_name[f"cpu:core-{socket}"].relative_uncertainty == package


def test_the_probe_says_which_figures_apply_and_why(fake: FakePowercap) -> None:
    fake.add_socket(dram=True)
    reason = RaplMeter(root=fake.root, cpu=SANDY_BRIDGE).probe().reason
    assert "uncertainty ±10% package, ±20% dram (Intel Sandy/Ivy Bridge: RAPL is a model)" in (
        reason
    )
    assert "AMD Zen" in RaplMeter(root=fake.root, cpu=ZEN2).probe().reason


def test_the_cpu_identity_is_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 49\n"
        "model name\t: AMD EPYC 7742 64-Core Processor\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 42\n",
        encoding="utf-8",
    )
    assert CpuIdentity.from_cpuinfo(cpuinfo) == ZEN2  # the first processor's, not "model name"
    assert CpuIdentity.from_cpuinfo(tmp_path / "missing") == CpuIdentity()
    assert CpuIdentity.from_cpuinfo(tmp_path / "missing").generation == "unknown"


def test_by_default_the_meter_reads_this_machines_cpu(fake: FakePowercap) -> None:
    fake.add_socket(dram=False)
    [package, _core] = RaplMeter(root=fake.root).start(0.0)
    here = CpuIdentity.from_cpuinfo()
    assert package.relative_uncertainty == here.relative_uncertainty(ComponentKind.CPU) > 0.0


# -- the combination rule ---------------------------------------------------------------


def test_independent_sensors_combine_in_quadrature() -> None:
    two = (comp("cpu:package-0", RAPL, 10.0, 1.0), comp("gpu:0", NVML, 10.0, 1.0))
    assert counted_totals(two) == (20.0, pytest.approx(math.sqrt(2.0)))  # 1.414 J


def test_components_of_one_sensor_share_its_scale_error_and_add_linearly() -> None:
    two = (comp("cpu:package-0", RAPL, 10.0, 1.0), comp("cpu:package-1", RAPL, 10.0, 1.0))
    assert counted_totals(two) == (20.0, pytest.approx(2.0))


def test_groups_add_linearly_within_and_in_quadrature_between() -> None:
    estimate = Source(Method.ESTIMATED, "cpu-tdp-utilisation")
    ram = Source(Method.ESTIMATED, "ram-0.3725-w-per-gb")
    parts = (
        comp("cpu:package-0", RAPL, 30.0, 1.5),
        comp("cpu:package-1", RAPL, 30.0, 1.5),
        comp("cpu:core-0", RAPL, 20.0, 1.0, counted=False),  # not counted: not combined
        comp("gpu:0", NVML, 100.0, 4.0),
        comp("cpu-0", estimate, 10.0, 3.0),
        comp("ram", ram, 2.0, 1.0),
        # The same sensor name under another method is another group.
        comp("x", Source(Method.ESTIMATED, "rapl-powercap"), 1.0, 1.0),
    )
    assert combined_uncertainty(parts) == pytest.approx(math.sqrt(3.0**2 + 4.0**2 + 9 + 1 + 1))
    assert combined_uncertainty(()) == 0.0


SOURCES = [RAPL, NVML, Source(Method.ESTIMATED, "cpu-tdp-utilisation")]


@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(SOURCES))), st.floats(0.0, 1e6), st.booleans()),
        max_size=8,
    )
)
def test_the_total_is_never_surer_than_its_least_sure_part(
    parts: list[tuple[int, float, bool]],
) -> None:
    energies = tuple(
        comp(f"c{i}", SOURCES[s], 10.0, u, counted=counted)
        for i, (s, u, counted) in enumerate(parts)
    )
    counted = [e.uncertainty_j for e in energies if e.counted]
    total = combined_uncertainty(energies)
    assert total >= max(counted, default=0.0) * (1 - 1e-12)
    assert total <= sum(counted) * (1 + 1e-12)


# -- runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpu", "relative"), [(SANDY_BRIDGE, 0.10), (SKYLAKE, 0.05), (ZEN2, 0.15)])
def test_a_rapl_measured_run_is_not_exact(
    fake: FakePowercap, cpu: CpuIdentity, relative: float
) -> None:
    # Before: uncertainty_j was 0.0 for every RAPL-measured run.
    pkg0 = fake.add_socket(dram=False, core=False)
    pkg1 = fake.add_socket(dram=False, core=False)
    t = Tracker("rapl", meters=[RaplMeter(root=fake.root, cpu=cpu)], store=False, interval_s=1)
    with t:
        fake.advance(pkg0, 30.0)
        fake.advance(pkg1, 20.0)
    r = t.result
    assert r is not None and r.energy_j == pytest.approx(50.0, abs=1e-6)
    # The two sockets are read by one model: their errors add linearly.
    assert r.uncertainty_j == pytest.approx(relative * 50.0, rel=1e-9)
    assert [c.uncertainty_j for c in r.components] == pytest.approx(
        [relative * 30.0, relative * 20.0]
    )


def test_rapl_and_nvml_are_independent_in_a_run(
    fake: FakePowercap, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    pkg = fake.add_socket(dram=False, core=False)
    gpus = make_fake_nvml(1)
    store = RunStore.open(store_url)
    try:
        meters = [RaplMeter(root=fake.root, cpu=SKYLAKE), NvmlMeter(nvml=gpus.module)]
        clock = FakeClock()
        t = Tracker("mixed", meters=meters, store=store, interval_s=1, clock=clock)
        with t:
            fake.advance(pkg, 40.0)
            gpus.advance(1.0, 300.0)
            clock.advance(0.05)
        r = t.result
        assert r is not None
        loaded = store.get_run(r.run_id)
    finally:
        store.close()
    by_name = {c.name: c for c in r.components}
    cpu_j, gpu_j = by_name["cpu:package-0"].uncertainty_j, by_name["gpu:0"].uncertainty_j
    assert cpu_j == pytest.approx(0.05 * 40.0)
    # Whatever NVML states for the GPU, the two add in quadrature, not linearly.
    assert r.uncertainty_j == pytest.approx(math.hypot(cpu_j, gpu_j), rel=1e-9)
    assert r.uncertainty_j >= max(cpu_j, gpu_j)
    assert loaded.uncertainty_j == pytest.approx(r.uncertainty_j, rel=1e-9)


def test_the_cli_reports_a_rapl_runs_uncertainty(child_env: dict[str, str], tmp_path: Path) -> None:
    fake = FakePowercap(tmp_path / "sys")
    pkg = fake.add_socket(dram=False)
    env = dict(child_env, WATTWISE_POWERCAP_ROOT=str(fake.root))
    with fake.drive({pkg: 40.0}):
        proc = wattwise(env, "run", "--json", "--", "sleep", "0.5")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    package = next(c for c in run["components"] if c["name"] == "cpu:package-0")
    # This machine's own CPU sets the figure (the child reads the same /proc/cpuinfo).
    expected = CpuIdentity.from_cpuinfo().relative_uncertainty(ComponentKind.CPU)
    assert package["energy_j"] > 0
    assert package["uncertainty_j"] == pytest.approx(expected * package["energy_j"], rel=1e-6)
    assert run["uncertainty_j"] >= package["uncertainty_j"] > 0  # was 0 J
