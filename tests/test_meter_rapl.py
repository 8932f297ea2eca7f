"""The RAPL meter against a real powercap tree on disk (FakePowercap)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wattwise._errors import ConfigError, MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._base import Component, ComponentKind, Method, Reading
from wattwise.meters._rapl import (
    DEFAULT_POWERCAP_ROOT,
    DEFAULT_ZONE_MAX_POWER_W,
    POWERCAP_ROOT_ENV,
    RAPL_SENSOR,
    RaplMeter,
)
from wattwise.testing._fake_powercap import (
    DEFAULT_DRAM_RANGE_UJ,
    DEFAULT_PACKAGE_RANGE_UJ,
    FakePowercap,
)
from wattwise.testing._meter_contract import MeterContract, MeterEnv

T0 = 1000.0


def by_name(readings: list[Reading]) -> dict[str, Reading]:
    return {r.component: r for r in readings}


def counted_j(components: list[Component], readings: list[Reading]) -> float:
    counted = {c.name for c in components if c.counted}
    return sum(r.energy_j or 0.0 for r in readings if r.component in counted)


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path)


class TestRaplContract(MeterContract):
    @pytest.fixture
    def meter_env(self, tmp_path: Path) -> Iterator[MeterEnv]:
        fake = FakePowercap(tmp_path)
        package = fake.add_socket(max_power_w=(125.0, 160.0), dram=True, core=True)
        core, dram = f"{package}:0", f"{package}:1"
        fake.add_psys()

        def advance(seconds: float) -> float:
            written = fake.advance(package, 41.3 * seconds) + fake.advance(dram, 4.7 * seconds)
            fake.advance(core, 30.0 * seconds)  # part of the package: never added
            return written / 1e6

        meter = RaplMeter(root=fake.root)
        yield MeterEnv(meter=meter, advance=advance, tolerance_j=1e-9, clock_s=T0)
        meter.close()


# -- finding zones ---------------------------------------------------------------------------


def test_two_sockets_with_subzones_are_found_by_name(fake: FakePowercap) -> None:
    fake.add_socket(core=True, uncore=True, dram=True)
    fake.add_socket(core=True, dram=True)
    meter = RaplMeter(root=fake.root)

    components = {c.name: c for c in meter.start(T0)}

    assert set(components) == {
        "cpu:package-0",
        "cpu:core-0",
        "cpu:uncore-0",
        "cpu:dram-0",
        "cpu:package-1",
        "cpu:core-1",
        "cpu:dram-1",
    }
    expected = {
        "cpu:package-0": (ComponentKind.CPU, True, "0", "intel-rapl:0"),
        "cpu:core-0": (ComponentKind.CPU_CORE, False, "0", "intel-rapl:0:0"),
        "cpu:uncore-0": (ComponentKind.CPU_UNCORE, False, "0", "intel-rapl:0:1"),
        "cpu:dram-0": (ComponentKind.DRAM, True, "0", "intel-rapl:0:2"),
        "cpu:package-1": (ComponentKind.CPU, True, "1", "intel-rapl:1"),
        "cpu:dram-1": (ComponentKind.DRAM, True, "1", "intel-rapl:1:1"),
    }
    for name, (kind, counted, device, zone_id) in expected.items():
        c = components[name]
        assert (c.kind, c.counted, c.device) == (kind, counted, device), name
        assert c.source.method is Method.MEASURED
        assert c.source.sensor == RAPL_SENSOR
        # Each zone once, by its top-level link, though sysfs also nests it in its parent.
        assert c.source.detail == str(fake.root / zone_id)


def test_zones_are_identified_by_name_not_index(fake: FakePowercap) -> None:
    # psys first, so package-0 sits at intel-rapl:1 and its dram at intel-rapl:1:0.
    psys = fake.add_psys()
    package = fake.add_socket(core=False, dram=True)
    meter = RaplMeter(root=fake.root)
    components = {c.name: c for c in meter.start(T0)}
    assert (psys, package) == ("intel-rapl:0", "intel-rapl:1")

    fake.advance(package, 7.0)
    fake.advance(f"{package}:0", 2.0)
    fake.advance(psys, 50.0)
    readings = by_name(meter.read(T0 + 1))

    assert readings["cpu:package-0"].energy_j == 7.0
    assert readings["cpu:dram-0"].energy_j == 2.0
    assert readings["psys"].energy_j == 50.0
    assert components["psys"].kind is ComponentKind.PSYS


def test_nested_only_tree_is_walked(fake: FakePowercap) -> None:
    # A root holding only the control-type directory (e.g. /sys/devices/virtual/powercap).
    fake.add_socket(dram=True)
    meter = RaplMeter(root=fake.base / "devices" / "virtual" / "powercap")
    names = [c.name for c in meter.start(T0)]
    assert sorted(names) == ["cpu:core-0", "cpu:dram-0", "cpu:package-0"]


def test_dangling_and_looping_links_are_skipped(fake: FakePowercap) -> None:
    fake.add_socket(dram=False, core=False)
    (fake.root / "intel-rapl:7").symlink_to("intel-rapl:7")  # a loop
    (fake.root / "intel-rapl:8").symlink_to("gone")  # a zone that went away
    meter = RaplMeter(root=fake.root)
    assert meter.probe().components == ("cpu:package-0",)


def test_multi_die_package_names(fake: FakePowercap) -> None:
    die0 = fake.add_zone("package-0-die-0", max_power_w=200.0)
    fake.add_zone("dram", parent=die0, max_energy_range_uj=DEFAULT_DRAM_RANGE_UJ)
    fake.add_zone("package-0-die-1", max_power_w=200.0, energy_uj=7_000_000)  # its own counter
    components = {c.name: c for c in RaplMeter(root=fake.root).start(T0)}
    assert set(components) == {"cpu:package-0-die-0", "cpu:dram-0-die-0", "cpu:package-0-die-1"}
    assert all(c.counted and c.device == "0" for c in components.values())


def test_unknown_zone_names_are_left_out_and_said(fake: FakePowercap) -> None:
    fake.add_socket(dram=False, core=False)
    fake.add_zone("gpu-thing")
    meter = RaplMeter(root=fake.root)
    probe = meter.probe()
    assert probe.available
    assert probe.components == ("cpu:package-0",)
    assert "gpu-thing" in probe.reason


# -- what is added -----------------------------------------------------------------------


def test_core_and_uncore_are_reported_but_not_added(fake: FakePowercap) -> None:
    package = fake.add_socket(core=True, uncore=True, dram=True)
    core, uncore, dram = (f"{package}:{i}" for i in range(3))
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)

    fake.advance(package, 60.0)
    fake.advance(core, 40.0)
    fake.advance(uncore, 5.0)
    fake.advance(dram, 3.0)
    readings = meter.read(T0 + 1)

    assert by_name(readings)["cpu:core-0"].energy_j == 40.0
    assert by_name(readings)["cpu:uncore-0"].energy_j == 5.0
    assert counted_j(components, readings) == 63.0


def test_psys_is_not_added_beside_packages(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    psys = fake.add_psys()
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert {c.name: c.counted for c in components} == {"cpu:package-0": True, "psys": False}

    fake.advance(package, 10.0)
    fake.advance(psys, 25.0)
    readings = meter.read(T0 + 1)
    assert by_name(readings)["psys"].energy_j == 25.0
    assert counted_j(components, readings) == 10.0


def test_psys_is_added_without_packages(fake: FakePowercap) -> None:
    psys = fake.add_psys()
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert [(c.name, c.counted) for c in components] == [("psys", True)]
    fake.advance(psys, 25.0)
    assert counted_j(components, meter.read(T0 + 1)) == 25.0


def test_mmio_package_repeating_the_msr_one_is_dropped(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    mmio = fake.add_mmio_package(0)
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert [c.name for c in components] == ["cpu:package-0"]
    assert components[0].source.detail == str(fake.root / package)

    fake.advance(package, 10.0)
    fake.advance(mmio, 10.0)  # the same energy seen through another interface
    assert counted_j(components, meter.read(T0 + 1)) == 10.0
    assert "intel-rapl-mmio:0" in meter.probe().reason


def test_mmio_package_alone_is_kept(fake: FakePowercap) -> None:
    mmio = fake.add_mmio_package(0)
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert [(c.name, c.source.detail) for c in components] == [
        ("cpu:package-0", str(fake.root / mmio))
    ]


def test_amd_style_package_without_constraints(fake: FakePowercap) -> None:
    package = fake.add_socket(max_power_w=None, dram=False, core=True)
    meter = RaplMeter(root=fake.root, cpu_tdp_w=280.0)
    components = meter.start(T0)
    assert [(c.name, c.counted) for c in components] == [
        ("cpu:package-0", True),
        ("cpu:core-0", False),
    ]
    fake.advance(package, 140.0)
    fake.advance(f"{package}:0", 100.0)
    assert counted_j(components, meter.read(T0 + 0.5)) == 140.0
    assert meter.max_interval_s == pytest.approx((DEFAULT_PACKAGE_RANGE_UJ + 1) / 1e6 / 280 / 8)


# -- units and wrap-around --------------------------------------------------------------


def test_microjoules_become_joules_exactly(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    assert fake.advance(package, 0.000123) == 123
    assert meter.read(T0 + 0.01)[0].energy_j == 0.000123


def test_single_wrap(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    fake.set_energy_uj(package, DEFAULT_PACKAGE_RANGE_UJ - 2_000_000)  # 2 J before the end
    meter = RaplMeter(root=fake.root)
    meter.start(T0)

    fake.advance(package, 5.0)
    assert fake.energy_uj(package) == 2_999_999  # went round: 0..range is range + 1 values
    reading = meter.read(T0 + 0.1)[0]
    assert reading.energy_j == 5.0
    assert reading.note is None and reading.since_s is None


@pytest.mark.parametrize(
    ("start_uj", "advance_uj", "expected_counter"),
    [
        (DEFAULT_PACKAGE_RANGE_UJ, 1, 0),  # from the largest value to 0
        (DEFAULT_PACKAGE_RANGE_UJ - 1, 1, DEFAULT_PACKAGE_RANGE_UJ),  # up to it, no wrap
        (DEFAULT_PACKAGE_RANGE_UJ, 2, 1),
        (5, DEFAULT_PACKAGE_RANGE_UJ, 4),  # almost a full turn
    ],
)
def test_wrap_near_the_boundary(
    fake: FakePowercap, start_uj: int, advance_uj: int, expected_counter: int
) -> None:
    package = fake.add_socket(core=False, dram=False)
    fake.set_energy_uj(package, start_uj)
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    fake.advance(package, advance_uj / 1e6)
    assert fake.energy_uj(package) == expected_counter
    assert meter.read(T0 + 0.001)[0].energy_j == advance_uj / 1e6


def test_many_wraps_over_many_reads_add_up(fake: FakePowercap) -> None:
    range_uj = 10_000_000  # 10 J
    package = fake.add_socket(
        core=False, dram=False, max_power_w=100.0, max_energy_range_uj=range_uj
    )
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    assert meter.max_interval_s == pytest.approx((range_uj + 1) / 1e6 / 100.0 / 8)
    total = 0.0
    for i in range(1, 41):
        fake.advance(package, 2.37)  # 237 W for 0.01 s: above 100 W, under the 400 W ceiling
        total += meter.read(T0 + 0.01 * i)[0].energy_j or 0.0
    assert total == pytest.approx(fake.written_uj(package) / 1e6, abs=1e-9)
    assert fake.written_uj(package) == 94_800_000  # more than nine turns of the counter


# -- max_interval_s ------------------------------------------------------------------------


@pytest.mark.parametrize("package_powers_w", [(95.0, 120.0), (120.0, 95.0)])
def test_max_interval_from_the_largest_constraint_of_the_fastest_zone(
    fake: FakePowercap, package_powers_w: tuple[float, float]
) -> None:
    fake.add_socket(max_power_w=package_powers_w, dram=True, dram_max_power_w=10.0)
    meter = RaplMeter(root=fake.root, cpu_tdp_w=9999.0)  # constraints win over the TDP
    package_wrap = (DEFAULT_PACKAGE_RANGE_UJ + 1) / 1e6 / 120.0
    dram_wrap = (DEFAULT_DRAM_RANGE_UJ + 1) / 1e6 / 10.0
    assert package_wrap < dram_wrap
    assert meter.max_interval_s == pytest.approx(package_wrap / 8)


def test_max_interval_takes_the_fastest_zone(fake: FakePowercap) -> None:
    fake.add_socket(max_power_w=120.0, dram=True, dram_max_power_w=40.0)
    dram_wrap = (DEFAULT_DRAM_RANGE_UJ + 1) / 1e6 / 40.0
    assert RaplMeter(root=fake.root).max_interval_s == pytest.approx(dram_wrap / 8)


def test_max_interval_ignores_zero_constraints(fake: FakePowercap) -> None:
    fake.add_socket(max_power_w=(0.0, 50.0), dram=False, core=False)
    meter = RaplMeter(root=fake.root)
    assert meter.max_interval_s == pytest.approx((DEFAULT_PACKAGE_RANGE_UJ + 1) / 1e6 / 50 / 8)


def test_max_interval_falls_back_to_tdp_then_default(fake: FakePowercap) -> None:
    fake.add_socket(max_power_w=None, dram=True, core=False)  # no constraints anywhere

    def dram_wrap_at(watts: float) -> float:
        return (DEFAULT_DRAM_RANGE_UJ + 1) / 1e6 / watts

    assert RaplMeter(root=fake.root, cpu_tdp_w=65.0).max_interval_s == pytest.approx(
        dram_wrap_at(65.0) / 8
    )
    assert RaplMeter(root=fake.root).max_interval_s == pytest.approx(
        dram_wrap_at(DEFAULT_ZONE_MAX_POWER_W) / 8
    )


def test_psys_without_max_power_is_not_bounded_by_cpu_tdp(fake: FakePowercap) -> None:
    fake.add_psys(max_power_w=None)
    meter = RaplMeter(root=fake.root, cpu_tdp_w=15.0)
    wrap_at_default = (DEFAULT_PACKAGE_RANGE_UJ + 1) / 1e6 / DEFAULT_ZONE_MAX_POWER_W
    assert meter.max_interval_s == pytest.approx(wrap_at_default / 8)


def test_max_interval_without_a_tree_is_unbounded(tmp_path: Path) -> None:
    assert RaplMeter(root=tmp_path / "missing").max_interval_s == math.inf


@pytest.mark.parametrize("tdp", [0.0, -5.0, math.nan, math.inf])
def test_bad_tdp_is_a_config_error(fake: FakePowercap, tdp: float) -> None:
    fake.add_socket()
    meter = RaplMeter(root=fake.root, cpu_tdp_w=tdp)
    assert not meter.probe().available
    assert "cpu_tdp_w" in meter.probe().reason
    with pytest.raises(ConfigError, match="cpu_tdp_w"):
        meter.start(T0)


# -- gaps ------------------------------------------------------------------------------------


def test_unreadable_counter_is_a_gap_then_recovered_with_since(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=True)
    dram = f"{package}:0"
    meter = RaplMeter(root=fake.root)
    meter.start(T0)

    fake.advance(package, 10.0)
    fake.advance(dram, 1.0)
    first = by_name(meter.read(T0 + 1))
    assert first["cpu:package-0"].energy_j == 10.0

    fake.make_unreadable(package)
    fake.advance(package, 20.0)
    fake.advance(dram, 2.0)
    gap = by_name(meter.read(T0 + 2))
    assert gap["cpu:package-0"].energy_j is None
    assert gap["cpu:package-0"].is_gap
    assert "energy_uj could not be read" in (gap["cpu:package-0"].note or "")
    assert gap["cpu:dram-0"].energy_j == 2.0  # the other zones go on

    fake.advance(package, 30.0)
    again = meter.read(T0 + 3)
    assert by_name(again)["cpu:package-0"].energy_j is None

    fake.restore(package)
    fake.advance(package, 40.0)
    recovered = by_name(meter.read(T0 + 4))["cpu:package-0"]
    assert recovered.energy_j == 90.0  # 20 + 30 + 40: nothing of the gap is lost
    assert recovered.since_s == T0 + 1  # the last good read

    fake.advance(package, 5.0)
    after = by_name(meter.read(T0 + 5))["cpu:package-0"]
    assert (after.energy_j, after.since_s) == (5.0, None)


def test_recovery_across_a_wrap(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    fake.set_energy_uj(package, DEFAULT_PACKAGE_RANGE_UJ - 1_000_000)
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    fake.make_empty(package)
    fake.advance(package, 3.0)
    assert meter.read(T0 + 1)[0].energy_j is None
    fake.restore(package)
    reading = meter.read(T0 + 2)[0]
    assert (reading.energy_j, reading.since_s) == (3.0, T0)


def test_empty_read_is_a_gap(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    fake.make_empty(package)
    assert (fake.zone_path(package) / "energy_uj").read_text() == ""
    reading = meter.read(T0 + 1)[0]
    assert reading.energy_j is None
    assert "read empty" in (reading.note or "")


def test_garbled_read_is_a_gap(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    energy = fake.zone_path(package) / "energy_uj"
    energy.chmod(0o644)
    energy.write_text("12ab\n")
    reading = meter.read(T0 + 1)[0]
    assert reading.energy_j is None and reading.note


def test_unreadable_longer_than_a_wrap_period_is_lost(fake: FakePowercap) -> None:
    range_uj = 10_000_000  # 10 J at most 100 W: a wrap period of 0.1 s
    package = fake.add_socket(
        core=False, dram=False, max_power_w=100.0, max_energy_range_uj=range_uj
    )
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    wrap_s = (range_uj + 1) / 1e6 / 100.0

    fake.make_unreadable(package)
    assert meter.read(T0 + wrap_s / 2)[0].energy_j is None
    fake.advance(package, 3.0)  # the meter cannot know how many turns happened
    fake.restore(package)
    lost = meter.read(T0 + wrap_s * 1.5)[0]
    assert lost.energy_j is None
    assert "lost" in (lost.note or "")
    assert lost.since_s is None

    fake.advance(package, 4.0)  # re-based on the value read above
    resumed = meter.read(T0 + wrap_s * 1.6)[0]
    assert (resumed.energy_j, resumed.since_s) == (4.0, None)


def test_a_read_later_than_the_wrap_period_is_not_trusted(fake: FakePowercap) -> None:
    range_uj = 10_000_000
    package = fake.add_socket(
        core=False, dram=False, max_power_w=100.0, max_energy_range_uj=range_uj
    )
    meter = RaplMeter(root=fake.root)
    meter.start(T0)
    fake.advance(package, 1.0)
    late = meter.read(T0 + 1.0)[0]  # ten wrap periods: the sampler ignored max_interval_s
    assert late.energy_j is None
    assert "not read for" in (late.note or "")


def test_counter_unreadable_at_start_starts_without_baseline(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=True)
    dram = f"{package}:0"
    fake.make_empty(dram)
    meter = RaplMeter(root=fake.root)
    assert meter.probe().available
    meter.start(T0)
    fake.advance(package, 1.0)
    fake.restore(dram)
    readings = by_name(meter.read(T0 + 1))
    assert readings["cpu:package-0"].energy_j == 1.0
    assert readings["cpu:dram-0"].energy_j is None  # no earlier value to subtract
    assert "energy before is unknown" in (readings["cpu:dram-0"].note or "")
    fake.advance(dram, 0.5)
    assert by_name(meter.read(T0 + 2))["cpu:dram-0"].energy_j == 0.5


def test_no_counter_readable_at_start_is_unavailable(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    fake.make_empty(package)
    meter = RaplMeter(root=fake.root)
    assert not meter.probe().available
    assert "could be read" in meter.probe().reason
    with pytest.raises(MeterUnavailable, match="could be read"):
        meter.start(T0)


def test_psys_is_added_when_the_only_package_is_unusable(fake: FakePowercap) -> None:
    package = fake.add_socket(core=False, dram=False)
    psys = fake.add_psys()
    range_file = fake.zone_path(package) / "max_energy_range_uj"
    range_file.chmod(0o644)
    range_file.write_text("0\n")
    meter = RaplMeter(root=fake.root)
    assert [(c.name, c.counted) for c in meter.start(T0)] == [("psys", True)]
    assert "max_energy_range_uj is 0" in meter.probe().reason
    fake.advance(psys, 2.0)
    assert meter.read(T0 + 1)[0].energy_j == 2.0


# -- absence, environment, lifecycle -------------------------------------------------------


def test_absent_tree(tmp_path: Path) -> None:
    meter = RaplMeter(root=tmp_path / "no-powercap")
    probe = meter.probe()
    assert (probe.meter, probe.available) == ("rapl", False)
    assert "no powercap tree" in probe.reason
    with pytest.raises(MeterUnavailable, match="no powercap tree"):
        meter.start(T0)


def test_tree_without_rapl_zones(fake: FakePowercap) -> None:
    (fake.root / "dtpm").mkdir()  # another control type, no energy counters
    probe = RaplMeter(root=fake.root).probe()
    assert not probe.available
    assert "no RAPL energy zone" in probe.reason
    with pytest.raises(MeterUnavailable):
        RaplMeter(root=fake.root).start(T0)


def test_root_comes_from_the_environment(
    fake: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_socket(dram=False, core=False)
    monkeypatch.setenv(POWERCAP_ROOT_ENV, str(fake.root))
    meter = RaplMeter()  # the constructor looks at nothing...
    assert meter.probe().available  # ...the environment is read when probing
    assert meter.start(T0)[0].source.detail == str(fake.root / "intel-rapl:0")

    monkeypatch.delenv(POWERCAP_ROOT_ENV)
    assert RaplMeter()._root() == DEFAULT_POWERCAP_ROOT
    assert RaplMeter(root=str(fake.root))._root() == fake.root


def test_constructor_only_stores(tmp_path: Path) -> None:
    meter = RaplMeter(root=tmp_path / "nothing-here", cpu_tdp_w=-1.0)  # no check, no I/O
    assert (meter.root, meter.cpu_tdp_w, meter.name) == (tmp_path / "nothing-here", -1.0, "rapl")


def test_read_before_start_or_after_close_raises(fake: FakePowercap) -> None:
    fake.add_socket()
    meter = RaplMeter(root=fake.root)
    with pytest.raises(MeterError, match="before start"):
        meter.read(T0)
    meter.start(T0)
    meter.close()
    with pytest.raises(MeterError):
        meter.read(T0 + 1)


# -- a thread writing while the meter polls -------------------------------------------------


def test_background_power_while_polling(fake: FakePowercap) -> None:
    range_uj = 5_000_000  # 5 J: at 10 W the package wraps every 0.5 s
    # The zone states 2.5 W and draws 10 W, its 4x ceiling: reads under 0.5 s apart are trusted.
    package = fake.add_socket(core=False, dram=True, max_power_w=2.5, max_energy_range_uj=range_uj)
    dram = f"{package}:0"
    meter = RaplMeter(root=fake.root, cpu_tdp_w=10.0)
    components = meter.start(time.monotonic())
    assert meter.max_interval_s == pytest.approx(0.25, rel=1e-6)

    total = 0.0
    gaps: list[Reading] = []
    with fake.drive({package: 10.0, dram: 2.0}, tick_s=0.002) as driver:
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            time.sleep(0.01)
            readings = meter.read(time.monotonic())
            gaps += [r for r in readings if r.is_gap]
            total += counted_j(components, readings)
    readings = meter.read(time.monotonic())
    total += counted_j(components, readings)

    assert gaps == []
    written_uj = driver.written_uj(package) + driver.written_uj(dram)
    assert driver.written_uj(package) > 2 * range_uj  # the counter wrapped while polled
    assert total == pytest.approx(written_uj / 1e6, abs=1e-9)


# -- permissions ---------------------------------------------------------------------------


def _probe_and_start_as_nobody(root: Path) -> dict[str, object]:
    """Run probe() and start() in a forked child that has dropped root, return results."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            meter = RaplMeter(root=root)
            probe = meter.probe()
            result: dict[str, object] = {
                "available": probe.available,
                "reason": probe.reason,
                "raised": None,
            }
            try:
                meter.start(T0)
            except MeterError as exc:
                result["raised"] = type(exc).__name__
                result["message"] = str(exc)
            os.write(write_end, json.dumps(result).encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    loaded: dict[str, object] = json.loads(data)
    return loaded


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    # pytest's tmp_path is inside a 0700 directory an unprivileged child cannot enter.
    directory = Path(tempfile.mkdtemp(prefix="wattwise-powercap-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.skipif(
    not hasattr(os, "fork") or os.geteuid() != 0,
    reason="needs root to drop privileges in a forked child",
)
def test_root_only_counters_name_the_fix(world_readable_dir: Path) -> None:
    fake = FakePowercap(world_readable_dir)
    fake.add_socket(dram=True)
    fake.add_psys()
    fake.make_root_only()
    assert (fake.zone_path("intel-rapl:0") / "energy_uj").stat().st_mode & 0o777 == 0o400

    result = _probe_and_start_as_nobody(fake.root)

    expected_fix = f"sudo chmod o+r {fake.root}/intel-rapl:*/energy_uj"
    assert result["available"] is False
    reason = str(result["reason"])
    assert expected_fix in reason
    assert "\n" not in reason
    assert result["raised"] == "MeterPermissionError"
    assert result["message"] == reason
    # The same tree is fine for root: only the permission made the difference.
    assert RaplMeter(root=fake.root).probe().available


@pytest.mark.skipif(
    not hasattr(os, "fork") or os.geteuid() != 0,
    reason="needs root to drop privileges in a forked child",
)
def test_readable_counters_work_unprivileged(world_readable_dir: Path) -> None:
    fake = FakePowercap(world_readable_dir)
    fake.add_socket(dram=True)
    result = _probe_and_start_as_nobody(fake.root)
    assert (result["available"], result["raised"]) == (True, None)


def test_permission_error_is_raised_by_start(
    fake: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same path as the forked test, for runs that cannot drop privileges.
    fake.add_socket(dram=False, core=False)
    real_read_text = Path.read_text

    def deny_energy(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", deny_energy)
    with pytest.raises(MeterPermissionError, match=r"chmod o\+r .*intel-rapl:\*/energy_uj"):
        RaplMeter(root=fake.root).start(T0)


# -- multi-die packages (issue 12, item 1) ----------------------------------------------------


AMD_RANGE_UJ = 65_535_999_999  # 2^32 ticks of 2^-16 J: the counter goes round every 65,536 J


def test_mirrored_die_zones_are_counted_once(fake: FakePowercap) -> None:
    # Threadripper 1950X (CodeCarbon issue 1274): both die zones show the socket's counter.
    die0, die1 = fake.add_multi_die_socket(2, mirrored=True, max_energy_range_uj=AMD_RANGE_UJ)
    fake.advance(die0, 12_345.678)  # whatever the counter showed before the run
    meter = RaplMeter(root=fake.root, cpu_tdp_w=180.0)
    components = meter.start(T0)
    by = {c.name: c for c in components}
    assert by["cpu:package-0-die-0"].counted
    assert not by["cpu:package-0-die-1"].counted
    assert "cpu:package-0-die-0" in by["cpu:package-0-die-1"].source.detail
    assert "die-1" in meter.probe().reason and "mirrors" in meter.probe().reason

    fake.advance(die1, 68.0)  # one counter, whichever zone moves it: both show +68 J
    readings = meter.read(T0 + 1)
    assert by_name(readings)["cpu:package-0-die-1"].energy_j == 68.0  # reported
    assert counted_j(components, readings) == 68.0  # not 136 J


def test_independent_die_zones_are_both_counted(fake: FakePowercap) -> None:
    # Intel Cascade Lake AP: two dies in one package, each with its own counter.
    die0, die1 = fake.add_multi_die_socket(2, mirrored=False, max_power_w=200.0)
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert all(c.counted for c in components)
    fake.advance(die0, 68.0)
    fake.advance(die1, 50.0)
    assert counted_j(components, meter.read(T0 + 1)) == 118.0
    fake.advance(die0, 68.0)
    fake.advance(die1, 68.0)  # the same energy in one interval is no reason to merge them
    assert counted_j(components, meter.read(T0 + 2)) == 136.0


def test_four_mirrored_dies_with_a_read_between_updates(fake: FakePowercap) -> None:
    dies = fake.add_multi_die_socket(4, mirrored=True, max_energy_range_uj=AMD_RANGE_UJ)
    meter = RaplMeter(root=fake.root, cpu_tdp_w=280.0)
    components = meter.start(time.monotonic())
    assert [c.counted for c in components] == [True, False, False, False]
    total = 0.0
    gaps: list[Reading] = []
    # The counter moves every 0.1 ms while the meter reads, so reads of the four zones
    # often straddle an update: the zones show slightly different values.
    with fake.drive({dies[0]: 250.0}, tick_s=0.0001) as driver:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            readings = meter.read(time.monotonic())
            gaps += [r for r in readings if r.is_gap]
            total += counted_j(components, readings)
    total += counted_j(components, meter.read(time.monotonic()))
    assert gaps == []
    assert total == pytest.approx(driver.written_uj(dies[0]) / 1e6, abs=1e-9)


def test_die_zones_taken_as_mirrors_that_drift_apart_are_then_added(fake: FakePowercap) -> None:
    # Two separate counters that happen to show the same value at start look like one;
    # the first interval in which they differ proves otherwise.
    die0 = fake.add_zone("package-0-die-0", max_power_w=200.0, energy_uj=5_000_000)
    die1 = fake.add_zone("package-0-die-1", max_power_w=200.0, energy_uj=5_000_000)
    meter = RaplMeter(root=fake.root)
    components = meter.start(T0)
    assert [c.counted for c in components] == [True, False]
    fake.advance(die0, 68.0)
    fake.advance(die1, 50.0)
    readings = by_name(meter.read(T0 + 1))
    package = readings["cpu:package-0-die-0"]
    assert package.energy_j == 118.0
    assert "cpu:package-0-die-1" in (package.note or "")
    fake.advance(die0, 1.0)
    fake.advance(die1, 2.0)
    assert by_name(meter.read(T0 + 2))["cpu:package-0-die-0"].energy_j == 3.0
    fake.make_unreadable(die1)  # half of the package unknown: the package's reading is a gap
    fake.advance(die0, 1.0)
    gap = by_name(meter.read(T0 + 3))["cpu:package-0-die-0"]
    assert gap.energy_j is None
    assert "unknown" in (gap.note or "")


# -- recovery after a long gap (issue 12, item 6) ---------------------------------------------


def test_long_gap_on_a_7950x_above_its_tdp_is_lost_not_recovered(fake: FakePowercap) -> None:
    # Ryzen 9 7950X: TDP 170 W, but its package power limit (PPT) is 230 W; AMD zones state
    # no maximum power, so the wrap period from the TDP is 65,536 J / 170 W = 385 s.
    package = fake.add_socket(
        max_power_w=None, dram=False, core=False, max_energy_range_uj=AMD_RANGE_UJ
    )
    meter = RaplMeter(root=fake.root, cpu_tdp_w=170.0)
    meter.start(T0)
    fake.make_unreadable(package)
    assert meter.read(T0 + 1)[0].is_gap
    fake.advance(package, 230.0 * 300)  # 69,000 J: the counter went round once
    fake.restore(package)
    reading = meter.read(T0 + 300)[0]
    assert reading.energy_j is None, f"reported {reading.energy_j} J as recovered"
    assert "lost" in (reading.note or "")
    fake.advance(package, 230.0)
    assert meter.read(T0 + 301)[0].energy_j == 230.0  # re-based on the value read above


def test_short_gap_on_a_7950x_is_still_recovered(fake: FakePowercap) -> None:
    package = fake.add_socket(
        max_power_w=None, dram=False, core=False, max_energy_range_uj=AMD_RANGE_UJ
    )
    meter = RaplMeter(root=fake.root, cpu_tdp_w=170.0)
    meter.start(T0)
    fake.make_unreadable(package)
    assert meter.read(T0 + 1)[0].is_gap
    fake.advance(package, 230.0 * 60)  # 13,800 J in 60 s: no wrap at up to 4 x 170 W
    fake.restore(package)
    reading = meter.read(T0 + 60)[0]
    assert (reading.energy_j, reading.since_s) == (13_800.0, T0)
