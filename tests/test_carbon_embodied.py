"""Embodied emissions: the arithmetic of the shares, the range, the label, the bundled table."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from wattwise import ConfigError
from wattwise.carbon import (
    DEFAULT_LIFETIME_YEARS,
    EMBODIED_LABEL,
    EmbodiedComponent,
    EmbodiedFactor,
    EmbodiedFigures,
    Hardware,
    embodied,
    embodied_factors,
)
from wattwise.carbon._embodied import _sockets, _virtual_machine
from wattwise.meters import Allocation

YEAR_S = 365.25 * 24 * 3600

#: Round factors, so that every figure below can be checked by hand.
FACTORS = {
    "cpu": EmbodiedFactor("cpu", "socket", 10.0, 20.0, 40.0, "test"),
    "ram": EmbodiedFactor("ram", "GB", 1.0, 2.0, 3.0, "test"),
    "gpu": EmbodiedFactor("gpu", "GPU", 50.0, 100.0, 200.0, "test"),
    "chassis": EmbodiedFactor("chassis", "machine", 100.0, 400.0, 800.0, "test"),
}
SERVER = Hardware(cpu_sockets=2, logical_cpus=64, ram_gb=256.0, gpus=8)


def by_name(figures: EmbodiedFigures) -> dict[str, EmbodiedComponent]:
    return {c.component: c for c in figures.components}


def test_one_year_of_a_quarter_of_a_server_is_a_sixteenth_of_its_footprint() -> None:
    """Amortisation (1 of 4 years) times allocation (16 of 64 CPUs, 64 of 256 GB, 2 of 8
    GPUs each whole): every component by hand, in grams."""
    f = embodied(
        SERVER,
        YEAR_S,
        cpus=16,
        ram_gb=64,
        gpus=2,
        lifetime_years=4,
        lifetime_range_years=(2, 8),
        factors=FACTORS,
    )
    parts = by_name(f)
    assert parts["cpu"].embodied_g == pytest.approx(20_000 * 2 * 0.25 / 4)
    assert parts["ram"].embodied_g == pytest.approx(2_000 * 256 * 0.25 / 4)
    assert parts["gpu"].embodied_g == pytest.approx(100_000 * 2 / 4)
    # the chassis by the larger of the CPU share (1/4) and the GPU share (2/8): 1/4
    assert parts["chassis"].embodied_g == pytest.approx(400_000 * 0.25 / 4)
    assert f.embodied_g == pytest.approx(2500 + 32_000 + 50_000 + 25_000)
    # the range: low factors over the longest lifetime, high factors over the shortest
    assert f.low_g == pytest.approx(
        (10_000 * 2 * 0.25 + 1000 * 256 * 0.25 + 50_000 * 2 + 100_000 * 0.25) / 8
    )
    assert f.high_g == pytest.approx(
        (40_000 * 2 * 0.25 + 3000 * 256 * 0.25 + 200_000 * 2 + 800_000 * 0.25) / 2
    )
    assert f.low_g < f.embodied_g < f.high_g


def test_the_charge_is_linear_in_time_and_a_lower_use_ratio_charges_each_hour_more() -> None:
    one = embodied(SERVER, 3600, factors=FACTORS)
    two = embodied(SERVER, 7200, factors=FACTORS)
    half_used = embodied(SERVER, 3600, use_ratio=0.5, factors=FACTORS)
    assert two.embodied_g == pytest.approx(2 * one.embodied_g)
    assert half_used.embodied_g == pytest.approx(2 * one.embodied_g)
    assert embodied(SERVER, 0.0, factors=FACTORS).embodied_g == 0.0
    # the whole machine for its whole lifetime is its whole footprint
    whole = embodied(SERVER, DEFAULT_LIFETIME_YEARS * YEAR_S, factors=FACTORS)
    assert whole.embodied_g == pytest.approx(1000 * (2 * 20 + 256 * 2 + 8 * 100 + 400))


def test_a_gpu_share_larger_than_the_cpu_share_sets_the_chassis_share() -> None:
    f = embodied(SERVER, 3600, cpus=8, gpus=8, factors=FACTORS)
    assert by_name(f)["chassis"].share == 1.0
    assert by_name(f)["cpu"].share == pytest.approx(8 / 64)


def test_the_allocation_gives_the_cpu_and_memory_shares() -> None:
    allocation = Allocation(
        cpus=4.0,
        cpus_from="SLURM 4",
        affinity_cpus=64,
        slurm_cpus=4,
        cgroup_cpu_quota=None,
        memory_limit_bytes=32 * 2**30,
        memory_from="SLURM",
        slurm_memory_bytes=32 * 2**30,
        cgroup_memory_max_bytes=None,
        memory_cgroup=None,
        cgroup=None,
        gpus=None,
        gpus_from="none",
        slurm_gpu_count=None,
        slurm_job_id="1",
    )
    f = embodied(SERVER, 3600, allocation=allocation, gpus=0, factors=FACTORS)
    parts = by_name(f)
    assert parts["cpu"].share == pytest.approx(4 / 64)
    assert parts["ram"].share == pytest.approx(32 / 256)
    assert "gpu" not in parts
    assert any("SLURM 4" in n for n in f.notes)


def test_the_figure_is_labelled_an_estimate_with_its_range_and_sources() -> None:
    f = embodied(SERVER, 3600)
    assert f.label == EMBODIED_LABEL
    assert "estimated" in f.label and "not included in the operational emissions" in f.label
    line = f.summary()
    assert f"{f.low_g:.3g}-{f.high_g:.3g}" in line and "range" in line and "estimated" in line
    data = f.to_dict()
    assert data["label"] == EMBODIED_LABEL and data["method"].startswith("estimated")
    assert data["low_g"] <= data["embodied_g"] <= data["high_g"]
    assert any("Boavizta" in s for s in data["sources"])
    assert {c["component"] for c in data["components"]} == {"cpu", "ram", "gpu", "chassis"}


def test_bundled_factors_are_ordered_and_cited() -> None:
    table = embodied_factors()
    assert set(table) == {"cpu", "ram", "gpu", "gpu-datacenter", "chassis"}
    for f in table.values():
        assert 0 < f.low_kg <= f.central_kg <= f.high_kg
        assert f.source and f.url.startswith("https://") and f.derivation and f.licence
    # the CPU row is Boavizta's documented formula at 24 cores, computed, not copied
    assert table["cpu"].central_kg == pytest.approx((24 * 0.245 + 0.491) * 1.97 + 9.14, abs=0.01)
    assert table["ram"].central_kg == pytest.approx(0.625 * 2.20 + 5.22 / 32, abs=0.01)
    # the data-centre GPU row: the published A100 figure, +-60 % (EcoDiag's LCA uncertainty)
    dc = table["gpu-datacenter"]
    assert dc.central_kg == 181.0 and dc.year == 2026 and "ADEME" in dc.source
    assert dc.low_kg == pytest.approx(181 / 1.6, abs=0.05)
    assert dc.high_kg == pytest.approx(181 * 1.6, abs=0.05)


def test_an_unknown_memory_size_is_left_out_and_said() -> None:
    f = embodied(Hardware(cpu_sockets=1, logical_cpus=8), 3600, factors=FACTORS)
    assert "ram" not in by_name(f)
    assert any("RAM not counted" in n for n in f.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lifetime_years": -1.0}, "lifetime -1.0 years must be a positive number"),
        ({"lifetime_years": 0.0}, "must be a positive number"),
        ({"lifetime_years": math.nan}, "must be a positive number"),
        ({"lifetime_range_years": (5.0, 6.0)}, "contain the lifetime 4"),
        ({"use_ratio": 0.0}, "use ratio 0.0 must be in (0, 1]"),
        ({"use_ratio": 1.5}, "use ratio"),
        ({"cpus": -2.0}, "CPUs -2.0 must be >= 0"),
        ({"gpus": -1}, "GPUs -1 must be >= 0"),
    ],
)
def test_bad_settings_are_one_line_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        embodied(SERVER, 3600, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_durations_hardware_and_factors_are_refused() -> None:
    with pytest.raises(ConfigError, match="duration -1"):
        embodied(SERVER, -1.0)
    with pytest.raises(ConfigError, match="at least 1 CPU socket"):
        Hardware(cpu_sockets=0)
    with pytest.raises(ConfigError, match="RAM -1"):
        Hardware(ram_gb=-1.0)
    with pytest.raises(ConfigError, match="low <= central <= high"):
        replace(FACTORS["cpu"], low_kg=30.0)


def test_more_cpus_than_the_machine_has_charges_the_whole_machine_and_says_so() -> None:
    f = embodied(SERVER, 3600, cpus=128, factors=FACTORS)
    assert by_name(f)["cpu"].share == 1.0
    assert any("exceed the machine's 64" in n for n in f.notes)


def test_sockets_and_virtual_machines_are_read_from_real_files(tmp_path: Path) -> None:
    for cpu, package in ((0, 0), (1, 0), (2, 1), (3, 1)):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{package}\n")
    assert _sockets(tmp_path) == 2
    assert _sockets(tmp_path / "missing") is None
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu vme hypervisor avx\n")
    assert _virtual_machine(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu vme avx\n")
    assert not _virtual_machine(info)
    assert not _virtual_machine(tmp_path / "absent")
    here = Hardware.detect(gpus=1)
    assert here.logical_cpus >= 1 and here.ram_gb and here.gpus == 1


@pytest.mark.slow
def test_the_demo_states_the_embodied_share_beside_its_emissions_not_in_them() -> None:
    from wattwise.carbon import emissions_for_energy, resolve_location
    from wattwise.demo._measure import measure_carbon
    from wattwise.demo._sections import carbon_lever

    scenario = measure_carbon(250.0, 70.0, lambda _msg: None)
    assert scenario.embodied is not None and scenario.embodied.duration_s == 70.0
    # the operational figures are the energy's alone
    assert scenario.emissions_de == emissions_for_energy(250.0, resolve_location("DE"))
    _, section = carbon_lever(scenario)
    line = next(p for p in section.paragraphs if "manufacturing footprint" in p)
    e = scenario.embodied
    assert f"~{e.embodied_g:.3g} gCO2e (range {e.low_g:.3g}-{e.high_g:.3g}" in line
    assert "estimate" in line and "not included in the emissions above" in line
