"""The estimate meter: the contract, the CPU and RAM model, defaults, hints, real psutil."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from wattwise._errors import ConfigError, MeterError
from wattwise.meters._base import ComponentKind, Method
from wattwise.meters._cpu_identify import identify_generation
from wattwise.meters._cpu_table import local_cpu_brand, lookup_cpu
from wattwise.meters._cpuinfo import read_cpuinfo
from wattwise.meters._estimate import (
    CPU_TDP_ENV,
    CPU_THREADS_ENV,
    DEFAULT_IDLE_FRACTION,
    DEFAULT_W_PER_THREAD,
    RAM_W_PER_GB,
    CpuTimes,
    EstimateMeter,
    resolve_cpu_power_model,
)
from wattwise.testing._meter_contract import MeterContract, MeterEnv

GIB = 2**30
GENOA = "AMD EPYC 9654 96-Core Processor"  # 360 W, 192 threads per package


@dataclass
class FakeCpus:
    """Cumulative CPU-time counters of ``n`` CPUs that tests move on by hand."""

    n: int
    busy_s: float = 100.0
    total_s: float = 1000.0
    fail: bool = False

    def times(self) -> CpuTimes:
        if self.fail:
            raise OSError("counters gone")
        return CpuTimes(self.busy_s, self.total_s)

    def run(self, seconds: float, utilisation: float) -> None:
        self.total_s += self.n * seconds
        self.busy_s += self.n * seconds * utilisation


def linear_w(max_w: float, u: float, idle: float = DEFAULT_IDLE_FRACTION) -> float:
    """The model written out independently of the meter."""
    return max_w * idle + max_w * (1 - idle) * u


def make_meter(cpus: FakeCpus, memory: list[int] | None = None, **kwargs: object) -> EstimateMeter:
    mem = memory if memory is not None else [4 * GIB]
    options: dict[str, object] = {
        "cpu_brand": GENOA,
        "visible_cpus": cpus.n,
        "cpu_times": cpus.times,
        "memory_used_bytes": lambda: mem[0],
        "environ": {},
    }
    options.update(kwargs)
    return EstimateMeter(**options)  # type: ignore[arg-type]


class TestEstimateMeterContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        cpus = FakeCpus(n=4)
        memory = [8 * GIB]
        meter = make_meter(cpus, memory)
        max_w = 360.0 * 4 / 192
        utilisations = iter([0.25, 1.0, 0.0, 0.5, 0.75, 0.1])

        def advance(seconds: float) -> float:
            u = next(utilisations)
            cpus.run(seconds, u)
            before = memory[0]
            memory[0] += GIB  # memory grows by 1 GiB each step: the mean is used
            ram_w = RAM_W_PER_GB * (before + memory[0]) / 2 / GIB
            return (linear_w(max_w, u) + ram_w) * seconds

        yield MeterEnv(meter=meter, advance=advance, tolerance_j=1e-9)


# -- CPU model ---------------------------------------------------------------------------


def test_components_are_estimated_with_their_model_and_inputs() -> None:
    cpus = FakeCpus(n=4)
    meter = make_meter(cpus)
    cpu, ram = meter.start(0.0)
    assert (cpu.name, cpu.kind, ram.name, ram.kind) == (
        "cpu",
        ComponentKind.CPU,
        "ram",
        ComponentKind.RAM,
    )
    assert cpu.source.method is Method.ESTIMATED and ram.source.method is Method.ESTIMATED
    assert cpu.source.sensor == "cpu-tdp-utilisation"
    assert ram.source.sensor == "ram-0.3725-w-per-gb"
    for text in ("AMD EPYC 9654", "TDP 360 W", "vendor-spec", "192 threads", "4 visible"):
        assert text in cpu.source.detail
    assert "idle fraction 0.211" in cpu.source.detail
    assert "0.3725 W/GB" in ram.source.detail
    assert 0 < cpu.relative_uncertainty < 1 and 0 < ram.relative_uncertainty < 1
    assert meter.hint is None
    assert meter.max_interval_s == 60.0


@pytest.mark.parametrize("u", [0.0, 1.0])
def test_utilisation_bounds_give_idle_and_full_power(u: float) -> None:
    cpus = FakeCpus(n=4)
    meter = make_meter(cpus, include_ram=False)
    meter.start(10.0)
    cpus.run(2.0, u)
    (reading,) = meter.read(12.0)
    max_w = 360.0 * 4 / 192
    assert reading.utilisation == u
    assert reading.energy_j == pytest.approx((max_w if u else max_w * 0.74 / 3.5) * 2.0)


def test_utilisation_outside_0_1_is_clamped() -> None:
    cpus = FakeCpus(n=2)
    meter = make_meter(cpus, include_ram=False)
    meter.start(0.0)
    cpus.busy_s += 50.0  # more busy time than elapsed: a bogus counter
    cpus.total_s += 2.0
    (reading,) = meter.read(1.0)
    assert reading.utilisation == 1.0
    model = meter.cpu_model
    assert model is not None
    assert model.power_w(-0.5) == pytest.approx(model.idle_power_w)
    assert model.power_w(7.0) == pytest.approx(model.max_power_w)


def test_an_interval_without_a_clock_tick_keeps_the_last_utilisation() -> None:
    cpus = FakeCpus(n=2)
    meter = make_meter(cpus, include_ram=False)
    meter.start(0.0)
    cpus.run(1.0, 0.8)
    assert meter.read(1.0)[0].utilisation == pytest.approx(0.8)
    (reading,) = meter.read(1.001)  # counters did not move
    assert reading.utilisation == pytest.approx(0.8)
    assert reading.energy_j is not None and reading.energy_j > 0


def test_vm_share_arithmetic() -> None:
    genoa = lookup_cpu(GENOA)
    assert genoa is not None
    vm = resolve_cpu_power_model(brand=GENOA, spec=genoa, visible_cpus=4)
    assert vm.share == pytest.approx(4 / 192)
    assert vm.max_power_w == pytest.approx(7.5)
    assert vm.power_w(0.5) == pytest.approx(linear_w(7.5, 0.5))
    two_sockets = resolve_cpu_power_model(brand=GENOA, spec=genoa, visible_cpus=384)
    assert two_sockets.share == 2 and two_sockets.max_power_w == 720.0
    # A table row carries the part's own threads: the OS's threads per core is not used.
    milan = lookup_cpu("AMD EPYC 7763 64-Core Processor")
    assert milan is not None and milan.threads == 128
    smt = resolve_cpu_power_model(brand="", spec=milan, visible_cpus=8, os_threads_per_core=2)
    assert smt.threads_per_package == 128 and smt.max_power_w == pytest.approx(280 * 8 / 128)
    given = resolve_cpu_power_model(brand="", spec=milan, visible_cpus=8, cpu_threads=64)
    assert given.max_power_w == pytest.approx(280 * 8 / 64)
    assert given.threads_source == "user"


def test_an_smt_part_on_a_vm_reporting_one_thread_per_core_uses_the_parts_threads() -> None:
    # Issue 12 item 7: an EPYC 7763 (280 W, 64 cores, 128 threads) seen through 4 vCPUs by
    # a guest that reports 1 thread per core was charged 280 x 4 / 64 = 17.5 W at most.
    milan = lookup_cpu("AMD EPYC 7763 64-Core Processor")
    assert milan is not None
    vm = resolve_cpu_power_model(brand="", spec=milan, visible_cpus=4, os_threads_per_core=1)
    assert vm.max_power_w == pytest.approx(8.75)
    assert (vm.threads_per_package, vm.threads_source) == (128, "table")
    # The meter end to end, the guest's counters as this VM reports them.
    cpus = FakeCpus(4)
    meter = make_meter(cpus, cpu_brand="AMD EPYC 7763 64-Core Processor", include_ram=False)
    meter.start(0.0)
    cpus.run(10.0, 1.0)
    (reading,) = meter.read(10.0)
    assert reading.energy_j == pytest.approx(87.5)


def test_a_hand_built_spec_without_threads_still_uses_the_os_threads_per_core() -> None:
    milan = lookup_cpu("AMD EPYC 7763 64-Core Processor")
    assert milan is not None
    bare = dataclasses.replace(milan, threads=None)
    model = resolve_cpu_power_model(brand="", spec=bare, visible_cpus=8, os_threads_per_core=2)
    assert model.threads_per_package == 128
    assert "from the OS" in model.threads_source


def test_proxy_rows_carry_a_wider_uncertainty_than_vendor_specs() -> None:
    proxy = lookup_cpu("AMD EPYC 7B13 64-Core Processor")
    vendor = lookup_cpu(GENOA)
    assert proxy is not None and vendor is not None and proxy.basis == "proxy"
    p = resolve_cpu_power_model(brand="", spec=proxy, visible_cpus=2)
    v = resolve_cpu_power_model(brand="", spec=vendor, visible_cpus=2)
    assert p.relative_uncertainty > v.relative_uncertainty > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"visible_cpus": 0},
        {"visible_cpus": 2, "user_tdp_w": -5.0},
        {"visible_cpus": 2, "user_tdp_w": math.nan},
        {"visible_cpus": 2, "cpu_threads": 0},
        {"visible_cpus": 2, "idle_fraction": 1.5},
    ],
)
def test_bad_inputs_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        resolve_cpu_power_model(brand="", spec=None, **kwargs)  # type: ignore[arg-type]


# -- unknown CPU, the hint, the environment ------------------------------------------------


def test_unknown_cpu_uses_the_stated_default_and_gives_one_hint() -> None:
    cpus = FakeCpus(n=2)
    meter = make_meter(cpus, cpu_brand="AMD EPYC", include_ram=False)
    probe = meter.probe()
    assert probe.available
    (cpu,) = meter.start(0.0)
    hint = meter.hint
    assert hint is not None and "\n" not in hint
    assert "--cpu-tdp-w" in hint and CPU_TDP_ENV in hint and "AMD EPYC" in hint
    assert probe.reason == hint
    assert meter.cpu_model is not None
    assert meter.cpu_model.max_power_w == DEFAULT_W_PER_THREAD * 2 == 12.0
    assert "unknown (AMD EPYC)" in cpu.source.detail
    known = make_meter(FakeCpus(n=2)).start(0.0)[0]
    assert cpu.relative_uncertainty > known.relative_uncertainty
    cpus.run(1.0, 1.0)
    assert meter.read(1.0)[0].energy_j == pytest.approx(12.0)


def test_tdp_from_the_environment_and_the_argument_wins() -> None:
    env = {CPU_TDP_ENV: "100", CPU_THREADS_ENV: "50"}
    meter = make_meter(FakeCpus(n=5), cpu_brand="Mystery CPU", environ=env)
    meter.start(0.0)
    assert meter.hint is None
    assert meter.cpu_model is not None
    assert meter.cpu_model.tdp_w == 100.0 and meter.cpu_model.max_power_w == 10.0
    assert CPU_TDP_ENV in meter.cpu_model.tdp_source
    # The argument wins over the variable; a known CPU's table TDP gives way to both.
    meter = make_meter(FakeCpus(n=4), cpu_tdp_w=192.0, environ=env, cpu_threads=192)
    meter.start(0.0)
    assert meter.cpu_model is not None and meter.cpu_model.max_power_w == 4.0


def test_tdp_from_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_TDP_ENV, "250")
    monkeypatch.delenv(CPU_THREADS_ENV, raising=False)
    meter = make_meter(FakeCpus(n=8), environ=None)  # Genoa: 192 threads from the table
    meter.start(0.0)
    assert meter.cpu_model is not None
    assert meter.cpu_model.max_power_w == pytest.approx(250 * 8 / 192)


def test_a_tdp_for_an_unknown_cpu_without_threads_is_charged_whole_and_flagged() -> None:
    meter = make_meter(FakeCpus(n=2), cpu_brand="Mystery CPU", cpu_tdp_w=30.0)
    meter.start(0.0)
    model = meter.cpu_model
    assert model is not None and model.max_power_w == 30.0
    assert CPU_THREADS_ENV in model.threads_source
    assert model.relative_uncertainty > 0.3


def test_a_bad_environment_value_fails_probe_and_start() -> None:
    meter = make_meter(FakeCpus(n=2), environ={CPU_TDP_ENV: "lots"})
    probe = meter.probe()
    assert not probe.available and CPU_TDP_ENV in probe.reason
    with pytest.raises(ConfigError, match=CPU_TDP_ENV):
        meter.start(0.0)
    with pytest.raises(ConfigError, match=CPU_THREADS_ENV):
        make_meter(FakeCpus(n=2), environ={CPU_THREADS_ENV: "1.5"}).start(0.0)


# -- RAM, gaps, lifecycle ------------------------------------------------------------------


def test_ram_power_is_0_3725_w_per_gb_in_use() -> None:
    memory = [16 * GIB]
    meter = make_meter(FakeCpus(n=1), memory, include_cpu=False)
    (ram,) = meter.start(0.0)
    assert ram.name == "ram"
    memory[0] = 8 * GIB
    (reading,) = meter.read(10.0)
    assert reading.energy_j == pytest.approx(0.3725 * 12 * 10.0)  # mean of 16 and 8 GB


def test_ram_only_probe_ignores_cpu_settings() -> None:
    meter = make_meter(FakeCpus(n=1), include_cpu=False, environ={CPU_TDP_ENV: "lots"})
    probe = meter.probe()
    assert probe.available and probe.components == ("ram",)
    off = make_meter(FakeCpus(n=1), include_cpu=False, include_ram=False)
    assert not off.probe().available
    with pytest.raises(ConfigError):
        off.start(0.0)


def test_unreadable_counters_give_gaps_not_zero_and_recover() -> None:
    cpus = FakeCpus(n=2)
    memory = [GIB]
    meter = make_meter(cpus, memory)
    meter.start(0.0)
    cpus.fail = True
    cpu, ram = meter.read(1.0)
    assert cpu.energy_j is None and cpu.note and "unreadable" in cpu.note
    assert ram.energy_j == pytest.approx(0.3725 * 1.0)
    cpus.fail = False
    cpus.run(2.0, 0.5)
    cpu, _ = meter.read(2.0)
    assert cpu.utilisation == pytest.approx(0.5)  # measured since the last good read
    assert cpu.energy_j == pytest.approx(linear_w(360.0 * 2 / 192, 0.5) * 1.0)


def test_read_before_start_and_after_close_is_an_error() -> None:
    meter = make_meter(FakeCpus(n=1))
    with pytest.raises(MeterError):
        meter.read(1.0)
    meter.start(0.0)
    meter.close()
    with pytest.raises(MeterError):
        meter.read(1.0)


# -- the real machine ----------------------------------------------------------------------


def test_real_psutil_smoke_read() -> None:
    meter = EstimateMeter(environ={})
    probe = meter.probe()
    assert probe.available, probe.reason
    components = meter.start(time.monotonic())
    assert [c.name for c in components] == ["cpu", "ram"]
    # Honest about this machine: the hint appears exactly when neither the table nor a
    # cpuinfo generation rule knows its CPU.
    known = lookup_cpu(local_cpu_brand()) is not None
    identified = identify_generation(read_cpuinfo(), local_cpu_brand()) is not None
    assert (meter.hint is None) == (known or identified)
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        pass  # keep one CPU busy so the counters move
    cpu, ram = meter.read(time.monotonic())
    assert cpu.utilisation is not None and 0.0 <= cpu.utilisation <= 1.0
    for reading in (cpu, ram):
        assert reading.energy_j is not None and math.isfinite(reading.energy_j)
        assert reading.energy_j > 0
    meter.close()
