"""The estimate meter: CPU power from a TDP table and utilisation, RAM power from memory in use.

Used where no sensor exists (VMs, containers, macOS). Every figure it gives is marked
``estimated`` with the model and its inputs, and carries a relative uncertainty. The model
and its citations are written out in ``docs/estimate-model.md``; in short:

CPU, linear in utilisation between an idle and a full-load power (Fan, Weber & Barroso,
"Power provisioning for a warehouse-sized computer", ISCA 2007, doi:10.1145/1250662.1250665)::

    P_cpu(u) = P_max * (f_idle + (1 - f_idle) * u)
    P_max    = TDP * n_visible / threads_per_package       (known CPU, or a TDP you give)
    P_max    = 6 W * n_visible                             (unknown CPU, see below)

* ``TDP`` as the full-load power, as Green Algorithms does (Lannelongue, Grealey & Inouye,
  Adv. Sci. 2021, doi:10.1002/advs.202100707), from the bundled table or from the user;
* ``n_visible / threads_per_package``: the share of the physical CPU package(s) this process
  was given (the smallest of its affinity, SLURM's CPUs and the cgroup ``cpu.max`` quota:
  ``_allocation.py``); a VM with 4 vCPUs on a 128-thread part is charged 4/128 of its TDP,
  a bare-metal 2-socket machine 2 packages;
* ``f_idle = 0.74 / 3.5``: the idle-to-full-load ratio of Cloud Carbon Footprint's
  SPECpower_ssj2008-derived AWS averages (0.74 W and 3.5 W per vCPU);
* ``u``: busy share of the visible CPUs' time between two reads, from the kernel's
  cumulative CPU-time counters (``psutil.cpu_times``); steal time is not busy.
* A CPU the table does not name but ``/proc/cpuinfo``'s vendor, family, model (stepping,
  flags) place in a generation (``_cpu_identify.py``): the middle of that generation's
  published parts' W per logical CPU, ``P_max = w_per_thread * n_visible``;
* Unknown CPU: 6 W per logical CPU, Green Algorithms' 12 W-per-core default halved for two
  hardware threads per core.

RAM: ``P_ram = 0.3725 W/GB * GB in use`` (Green Algorithms referenceValues, memoryPower),
with "in use" = total - available memory, averaged over the two ends of an interval; under
a memory limit (cgroup ``memory.max``, SLURM) the job's own memory in use, capped at it.

Why one module of ~750 lines: the CPU model's inputs (TDP, threads, the CPU-time split) and
the meter that applies them are one model, with its citations in one place; the TDP table
itself is in ``_cpu_table.py``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Final

import psutil

from wattwise._errors import ConfigError, MeterError
from wattwise.meters._allocation import (
    Allocation,
    allocation_memory_reader,
    memory_current_file,
    read_allocation,
)
from wattwise.meters._apple_table import apple_cpu_spec, apple_cpu_uncertainty
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Probe, Reading, Source
from wattwise.meters._cpu_identify import CpuGeneration, identify_generation
from wattwise.meters._cpu_table import CpuSpec, local_cpu_brand, lookup_cpu
from wattwise.meters._cpuinfo import DEFAULT_CPUINFO, CpuInfo, cpuinfo_path, read_cpuinfo

__all__ = [
    "CCF_AWS_MAX_W_PER_VCPU",
    "CCF_AWS_MIN_W_PER_VCPU",
    "CPU_TDP_ENV",
    "CPU_TDP_RANGE_W",
    "CPU_THREADS_ENV",
    "CPU_THREADS_RANGE",
    "DEFAULT_IDLE_FRACTION",
    "DEFAULT_W_PER_THREAD",
    "RAM_W_PER_GB",
    "CpuPowerModel",
    "CpuTimes",
    "EstimateMeter",
    "psutil_cpu_times",
    "psutil_memory_used_bytes",
    "resolve_cpu_power_model",
    "split_cpu_time_s",
]

#: Environment variable giving the CPU's TDP when the argument is not given. Units: W.
CPU_TDP_ENV: Final = "WATTWISE_CPU_TDP_W"
#: Environment variable giving the hardware threads of one CPU package, when the argument
#: is not given (needed with a TDP on a VM whose CPU the table does not know).
CPU_THREADS_ENV: Final = "WATTWISE_CPU_THREADS"

#: TDPs of one CPU package that can be real: from the smallest embedded parts (a few W) to
#: above today's largest server parts (500 W). Units: W.
CPU_TDP_RANGE_W: Final = (1.0, 1000.0)
#: Hardware threads of one CPU package that can be real (today's largest: 576).
CPU_THREADS_RANGE: Final = (1, 4096)


def _check_tdp(tdp_w: float, origin: str) -> float:
    low, high = CPU_TDP_RANGE_W
    if not low <= tdp_w <= high:  # also refuses NaN
        raise ConfigError(
            f"CPU TDP {tdp_w:g} W ({origin}) is not plausible: one CPU package's TDP lies "
            f"between {low:g} and {high:g} W (see its spec sheet)"
        )
    return tdp_w


def _check_threads(threads: int, origin: str) -> int:
    low, high = CPU_THREADS_RANGE
    if not low <= threads <= high:
        raise ConfigError(
            f"CPU threads per package {threads} ({origin}) is not plausible: give the hardware "
            f"threads of one package, between {low} and {high}"
        )
    return threads


#: Cloud Carbon Footprint's AWS averages over CPU microarchitectures, derived from
#: SPECpower_ssj2008 results: minimum (idle) and maximum power per vCPU. Units: W.
#: Source: cloud-carbon-footprint, packages/aws/src/domain/AwsFootprintEstimationConstants.ts
#: (MIN_WATTS_AVG, MAX_WATTS_AVG).
CCF_AWS_MIN_W_PER_VCPU: Final = 0.74
CCF_AWS_MAX_W_PER_VCPU: Final = 3.5
#: Idle power as a fraction of full-load power (about 0.211). Dimensionless.
DEFAULT_IDLE_FRACTION: Final = CCF_AWS_MIN_W_PER_VCPU / CCF_AWS_MAX_W_PER_VCPU

#: Green Algorithms' default power of an unknown CPU ("Any": 12 W per core), per hardware
#: thread assuming two threads per core: what one visible logical CPU is charged. Units: W.
GREEN_ALGORITHMS_ANY_W_PER_CORE: Final = 12.0
DEFAULT_W_PER_THREAD: Final = GREEN_ALGORITHMS_ANY_W_PER_CORE / 2

#: Memory power per GB in use (Green Algorithms referenceValues ``memoryPower``, from
#: Karyakin & Salem, DaMoN 2017, doi:10.1145/3076113.3076117). Units: W/GB, GB = 2**30 B.
RAM_W_PER_GB: Final = 0.3725
_BYTES_PER_GB: Final = 2**30

# One-sigma relative uncertainties. These are engineering judgements, stated so that no
# estimate is read as exact; docs/estimate-model.md gives the reasoning.
UNCERTAINTY_CPU_KNOWN: Final = 0.30
UNCERTAINTY_CPU_PROXY: Final = 0.40
UNCERTAINTY_CPU_UNKNOWN: Final = 0.60
UNCERTAINTY_RAM: Final = 0.50

#: Longest wait between reads. CPU time is a cumulative counter, so the utilisation of any
#: interval is exact however long; memory in use is only sampled at the ends, and 60 s keeps
#: that sampling error and the power timeline's resolution reasonable. Units: s.
MAX_INTERVAL_S: Final = 60.0

CPU_SENSOR: Final = "cpu-tdp-utilisation"
RAM_SENSOR: Final = "ram-0.3725-w-per-gb"


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU time over the CPUs this process can see.

    Attributes:
        busy_s: time spent running anything (user, system, interrupts). Units: s.
        total_s: all time counted, busy or not (idle, I/O wait, steal included). Units: s.
    """

    busy_s: float
    total_s: float


def psutil_cpu_times(cpus: Collection[int] | None = None) -> CpuTimes:
    """Sum the kernel's CPU-time counters over ``cpus`` (all CPUs when ``None``).

    Idle, I/O wait and steal (time the hypervisor gave to another guest) count as not busy;
    guest time is already inside user time on Linux and is not counted twice.

    Args:
        cpus: CPU numbers to add up, e.g. this process's affinity.
    """
    per_cpu = psutil.cpu_times(percpu=True)
    if cpus is not None:
        chosen = [t for i, t in enumerate(per_cpu) if i in cpus]
        per_cpu = chosen or per_cpu  # numbering mismatch (offline CPUs): use them all
    busy = total = 0.0
    for t in per_cpu:
        one = split_cpu_time_s(t._asdict())
        total += one.total_s
        busy += one.busy_s
    return CpuTimes(busy_s=max(busy, 0.0), total_s=total)


def split_cpu_time_s(fields: Mapping[str, float]) -> CpuTimes:
    """Busy and total seconds of one CPU's kernel counters (``psutil.cpu_times()._asdict()``).

    The one rule of what is busy, shared by this meter and process scope so the two agree:
    idle, I/O wait and steal (time the hypervisor gave to another guest: this guest did not
    run) are not busy; guest and guest_nice are already inside user and nice on Linux and
    are not counted again.
    """
    counted = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0) + fields.get("steal", 0.0)
    return CpuTimes(busy_s=max(counted - idle, 0.0), total_s=counted)


def psutil_memory_used_bytes() -> int:
    """Memory in use on this machine: total minus available. Units: bytes."""
    vm = psutil.virtual_memory()
    return int(vm.total - vm.available)


def _visible_cpu_ids() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(psutil.cpu_count(logical=True) or 1))


def _os_threads_per_core() -> int:
    """Hardware threads per core as the OS reports them, clamped to 1..2."""
    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False) or logical
    return min(2, max(1, round(logical / physical)))


@dataclass(frozen=True)
class CpuPowerModel:
    """The resolved inputs of the CPU estimate and the power they give.

    Attributes:
        brand: the CPU brand string the model was chosen for.
        spec: the table row used, or ``None`` for an unknown CPU.
        tdp_w: TDP of one package used, or ``None`` for the per-thread default. Units: W.
        tdp_source: where ``tdp_w`` (or the default) comes from.
        threads_per_package: hardware threads of one package, or ``None`` (default model).
        threads_source: where ``threads_per_package`` comes from.
        visible_cpus: logical CPUs charged: those this process can see, or fewer where its
            allocation (SLURM, a cgroup quota) gives it fewer; may be fractional.
        share: packages' worth of CPU visible (``visible_cpus / threads_per_package``), or
            ``None`` (default model).
        max_power_w: power at full utilisation of the visible CPUs. Units: W.
        idle_fraction: idle power over full-load power. Dimensionless.
        relative_uncertainty: one-sigma relative uncertainty of the energy.
        hint: one line telling how to give the CPU's power, for an unknown CPU; else None.
        cpus_from: where a visible CPU count below the affinity's comes from, or ``""``.
        generation: the cpuinfo rule's generation the power comes from, for a CPU the table
            does not name (no TDP given); else None.
    """

    brand: str
    spec: CpuSpec | None
    tdp_w: float | None
    tdp_source: str
    threads_per_package: int | None
    threads_source: str
    visible_cpus: float
    share: float | None
    max_power_w: float
    idle_fraction: float
    relative_uncertainty: float
    hint: str | None = None
    cpus_from: str = ""
    generation: CpuGeneration | None = None

    def power_w(self, utilisation: float) -> float:
        """CPU power at a utilisation (clamped to 0..1). Units: W."""
        u = min(1.0, max(0.0, utilisation))
        return self.max_power_w * (self.idle_fraction + (1.0 - self.idle_fraction) * u)

    @property
    def idle_power_w(self) -> float:
        """CPU power at zero utilisation. Units: W."""
        return self.power_w(0.0)

    def _origin(self) -> str:
        return f" ({self.cpus_from})" if self.cpus_from else ""

    def detail(self) -> str:
        """One line naming every input, for :attr:`Source.detail`."""
        model = self.spec.name if self.spec else f"unknown ({self.brand or 'no brand string'})"
        if self.generation is not None and self.tdp_w is None:
            model = f"{self.generation.rule.generation} ({self.brand or 'no brand string'})"
        if self.tdp_w is not None and self.share is not None:
            power = (
                f"TDP {self.tdp_w:g} W ({self.tdp_source}); {self.threads_per_package} "
                f"threads/package ({self.threads_source}); {self.visible_cpus:g} visible "
                f"logical CPUs{self._origin()} = {self.share:.4g} package(s)"
            )
        else:
            power = f"{self.tdp_source}; {self.visible_cpus:g} visible logical CPUs{self._origin()}"
        return (
            f"CPU {model}; {power}; max {self.max_power_w:.4g} W; "
            f"idle fraction {self.idle_fraction:.3f}"
        )


def _hint(brand: str) -> str:
    return (
        f"CPU {brand or '(no brand string)'!r} is not in the power table, so "
        f"{DEFAULT_W_PER_THREAD:g} W per logical CPU is assumed: give its TDP with "
        f"--cpu-tdp-w W or {CPU_TDP_ENV}=W"
    )


def resolve_cpu_power_model(
    *,
    brand: str,
    spec: CpuSpec | None,
    visible_cpus: float,
    user_tdp_w: float | None = None,
    user_tdp_origin: str = "given",
    cpu_threads: int | None = None,
    os_threads_per_core: int = 1,
    idle_fraction: float = DEFAULT_IDLE_FRACTION,
    generation: CpuGeneration | None = None,
) -> CpuPowerModel:
    """Choose the CPU model's inputs. Pure: no hardware is read.

    Args:
        brand: the CPU brand string (for the record).
        spec: the table row for it, or ``None`` when unknown.
        visible_cpus: logical CPUs charged (> 0; fractional under a cgroup quota).
        user_tdp_w: a TDP of one package given by the user; wins over the table. Units: W.
        user_tdp_origin: how it was given, e.g. ``"WATTWISE_CPU_TDP_W"``.
        cpu_threads: hardware threads of one package given by the user; wins over the table.
        os_threads_per_core: threads per core the OS reports, used with the spec's cores
            only for a hand-built spec without threads (every bundled row has them).
        idle_fraction: idle over full-load power (0..1).
        generation: the generation cpuinfo identified (``_cpu_identify``); used when no
            table row and no TDP is given, instead of the per-thread default.

    Raises:
        ConfigError: a non-positive TDP, thread count or visible CPU count, or an idle
            fraction outside 0..1.
    """
    if visible_cpus <= 0:
        raise ConfigError(f"visible CPUs must be positive, got {visible_cpus}")
    if user_tdp_w is not None:
        _check_tdp(user_tdp_w, user_tdp_origin)
    if cpu_threads is not None:
        _check_threads(cpu_threads, "given")
    if not 0.0 <= idle_fraction <= 1.0:
        raise ConfigError(f"idle fraction must be within 0..1, got {idle_fraction}")

    tdp_w: float | None
    if user_tdp_w is not None:
        tdp_w, tdp_source = float(user_tdp_w), f"user, {user_tdp_origin}"
        uncertainty = UNCERTAINTY_CPU_KNOWN
    elif spec is not None:
        tdp_w, tdp_source = spec.tdp_w, f"{spec.basis}: {spec.source}"
        uncertainty = UNCERTAINTY_CPU_PROXY if spec.basis == "proxy" else UNCERTAINTY_CPU_KNOWN
    elif generation is not None:
        return _generation_model(brand, generation, visible_cpus, idle_fraction)
    else:
        return CpuPowerModel(
            brand=brand,
            spec=None,
            tdp_w=None,
            tdp_source=(
                f"default {DEFAULT_W_PER_THREAD:g} W per logical CPU (Green Algorithms "
                f"'Any' {GREEN_ALGORITHMS_ANY_W_PER_CORE:g} W/core, 2 threads/core)"
            ),
            threads_per_package=None,
            threads_source="",
            visible_cpus=visible_cpus,
            share=None,
            max_power_w=DEFAULT_W_PER_THREAD * visible_cpus,
            idle_fraction=idle_fraction,
            relative_uncertainty=UNCERTAINTY_CPU_UNKNOWN,
            hint=_hint(brand),
        )

    threads: int
    if cpu_threads is not None:
        threads, threads_source = cpu_threads, "user"
    elif spec is not None and spec.threads is not None:
        threads, threads_source = spec.threads, "table"
    elif spec is not None:
        threads = spec.cores * os_threads_per_core
        threads_source = f"table cores x {os_threads_per_core} thread(s)/core from the OS"
    else:
        # A TDP given for an unknown CPU and no thread count: charge the whole TDP to what
        # is visible (right on bare metal with one socket; on a VM give cpu_threads too).
        threads = max(1, math.ceil(visible_cpus))
        threads_source = f"assumed = visible CPUs; on a VM set {CPU_THREADS_ENV}"
        uncertainty = max(uncertainty, UNCERTAINTY_CPU_PROXY)
    share = visible_cpus / threads
    return CpuPowerModel(
        brand=brand,
        spec=spec,
        tdp_w=tdp_w,
        tdp_source=tdp_source,
        threads_per_package=threads,
        threads_source=threads_source,
        visible_cpus=visible_cpus,
        share=share,
        max_power_w=tdp_w * share,
        idle_fraction=idle_fraction,
        relative_uncertainty=uncertainty,
    )


def _generation_model(
    brand: str, generation: CpuGeneration, visible_cpus: float, idle_fraction: float
) -> CpuPowerModel:
    """The model of a CPU cpuinfo placed in a generation: its parts' middle W per thread.

    The uncertainty adds the range's spread (which part of the generation it is) to the
    TDP model's own (:data:`UNCERTAINTY_CPU_KNOWN`) in quadrature: they are independent.
    """
    return CpuPowerModel(
        brand=brand,
        spec=None,
        tdp_w=None,
        tdp_source=generation.detail(),
        threads_per_package=None,
        threads_source="",
        visible_cpus=visible_cpus,
        share=None,
        max_power_w=generation.w_per_thread * visible_cpus,
        idle_fraction=idle_fraction,
        relative_uncertainty=math.hypot(UNCERTAINTY_CPU_KNOWN, generation.spread),
        generation=generation,
    )


class EstimateMeter(Meter):
    """Estimated CPU and RAM energy where no sensor exists.

    The constructor only stores; the CPU is identified and the first counters are read in
    :meth:`start`.

    Args:
        cpu_tdp_w: TDP of one CPU package (the spec-sheet figure). Wins over the table and
            over the ``WATTWISE_CPU_TDP_W`` environment variable. Units: W.
        cpu_brand: the CPU brand string to look up; default: this machine's.
        include_ram: report the ``ram`` component.
        include_cpu: report the ``cpu`` component (detection turns it off where RAPL
            measures the CPU and only memory is left to estimate).
        cpu_threads: hardware threads of one CPU package; wins over the table and over the
            ``WATTWISE_CPU_THREADS`` environment variable; default: the part's own threads
            from the table (never the guest's threads per core: VMs often report 1 on SMT
            hosts). Give it with ``cpu_tdp_w`` on a VM whose CPU the table does not know.
        idle_fraction: idle power over full-load power. Dimensionless.
        visible_cpus: logical CPUs to charge for; default: what the job was given
            (:attr:`Allocation.cpus`: its affinity, SLURM's CPUs or the cgroup quota).
        cpu_times: returns cumulative :class:`CpuTimes`; default: the kernel's counters
            over the CPUs this process can see (tests pass their own).
        memory_used_bytes: returns memory in use in bytes; default: total - available, or
            the job's own under a memory limit (:func:`allocation_memory_reader`).
        environ: environment to read ``WATTWISE_CPU_TDP_W`` and ``WATTWISE_CPU_THREADS``
            (and the allocation) from; default: ``os.environ``.
        allocation: what the job was given; default: :func:`read_allocation` at
            :meth:`probe` / :meth:`start`.
        cpuinfo: a cpuinfo file whose vendor, family, model, stepping and flags place a CPU
            the table does not name in a generation (and, without ``cpu_brand``, whose
            ``model name`` is the brand); default: the ``WATTWISE_CPUINFO`` environment
            variable, else ``/proc/cpuinfo`` when the brand is this machine's (with a
            ``cpu_brand`` given and neither set, no cpuinfo is read).
    """

    name = "estimate"

    def __init__(
        self,
        cpu_tdp_w: float | None = None,
        cpu_brand: str | None = None,
        include_ram: bool = True,
        *,
        include_cpu: bool = True,
        cpu_threads: int | None = None,
        idle_fraction: float = DEFAULT_IDLE_FRACTION,
        visible_cpus: int | None = None,
        cpu_times: Callable[[], CpuTimes] | None = None,
        memory_used_bytes: Callable[[], int] | None = None,
        environ: Mapping[str, str] | None = None,
        allocation: Allocation | None = None,
        cpuinfo: str | os.PathLike[str] | None = None,
    ) -> None:
        self.cpu_tdp_w = cpu_tdp_w
        self.cpu_brand = cpu_brand
        self.include_ram = include_ram
        self.include_cpu = include_cpu
        self.cpu_threads = cpu_threads
        self.idle_fraction = idle_fraction
        self.visible_cpus = visible_cpus
        self.cpu_times = cpu_times
        self.memory_used_bytes = memory_used_bytes
        self.environ = environ
        self.allocation = allocation
        self.cpuinfo = cpuinfo
        #: One line telling how to give the CPU's power, when the CPU is unknown; set by
        #: :meth:`start` (:meth:`probe` gives the same line as its reason).
        self.hint: str | None = None
        #: The resolved CPU model (``None`` without a ``cpu`` component); set by :meth:`start`.
        self.cpu_model: CpuPowerModel | None = None
        self._started = False
        self._times: Callable[[], CpuTimes] | None = None
        self._memory: Callable[[], int] | None = None
        self._last_s = 0.0
        self._last_times: CpuTimes | None = None
        self._last_memory: int | None = None
        self._last_utilisation = 0.0
        # Busy share of the visible CPUs -> of the CPUs charged (visible / charged, >= 1).
        self._utilisation_scale = 1.0

    # -- resolution --------------------------------------------------------------------

    def _env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ

    def check_settings(self) -> None:
        """Check the TDP and thread count given here or in the environment; reads no hardware.

        Raises:
            ConfigError: one is not a number, or not plausible (see :data:`CPU_TDP_RANGE_W`
                and :data:`CPU_THREADS_RANGE`).
        """
        self._user_tdp()
        self._user_threads()

    def _user_tdp(self) -> tuple[float | None, str]:
        if self.cpu_tdp_w is not None:
            origin = "--cpu-tdp-w / cpu_tdp_w"
            return _check_tdp(float(self.cpu_tdp_w), origin), origin
        raw = self._env().get(CPU_TDP_ENV, "").strip()
        if not raw:
            return None, ""
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(
                f"{CPU_TDP_ENV}={raw!r} is not a number; give the CPU's TDP in watts, e.g. 205"
            ) from None
        return _check_tdp(value, CPU_TDP_ENV), CPU_TDP_ENV

    def _user_threads(self) -> int | None:
        if self.cpu_threads is not None:
            return _check_threads(self.cpu_threads, "cpu_threads")
        raw = self._env().get(CPU_THREADS_ENV, "").strip()
        if not raw:
            return None
        try:
            return _check_threads(int(raw), CPU_THREADS_ENV)
        except ValueError:
            raise ConfigError(
                f"{CPU_THREADS_ENV}={raw!r} is not a whole number; give the hardware threads "
                "of one CPU package, e.g. 128"
            ) from None

    def _allocation(self) -> Allocation:
        if self.allocation is None:
            self.allocation = read_allocation(environ=self.environ)
        return self.allocation

    def _cpu_identity(self) -> tuple[str, CpuInfo]:
        """The brand to look up and the cpuinfo to identify a generation by."""
        given = self.cpuinfo if self.cpuinfo is not None else cpuinfo_path(self._env())
        if given is not None:
            info = read_cpuinfo(given)
            return (self.cpu_brand if self.cpu_brand is not None else info.model_name), info
        if self.cpu_brand is not None:
            return self.cpu_brand, CpuInfo()
        return local_cpu_brand(), read_cpuinfo(DEFAULT_CPUINFO)

    def _resolve(self) -> tuple[CpuPowerModel, list[int] | None]:
        brand, info = self._cpu_identity()
        user_tdp_w, origin = self._user_tdp()
        cpu_ids: list[int] | None = None
        cpus_from = ""
        visible: float
        if self.visible_cpus is not None:
            visible = self.visible_cpus
        else:
            cpu_ids = _visible_cpu_ids()
            allocation = self._allocation()
            visible = min(float(len(cpu_ids)), allocation.cpus)
            if visible < len(cpu_ids):
                cpus_from = f"allocation: {allocation.cpus_from}"
        spec = lookup_cpu(brand) or apple_cpu_spec(brand)
        model = resolve_cpu_power_model(
            brand=brand,
            spec=spec,
            visible_cpus=visible,
            user_tdp_w=user_tdp_w,
            user_tdp_origin=origin,
            cpu_threads=self._user_threads(),
            os_threads_per_core=_os_threads_per_core(),
            idle_fraction=self.idle_fraction,
            generation=identify_generation(info, brand) if spec is None else None,
        )
        if cpus_from:
            model = dataclasses.replace(model, cpus_from=cpus_from)
        apple_uncertainty = apple_cpu_uncertainty(spec)
        if apple_uncertainty is not None and user_tdp_w is None:
            # An Apple-silicon row: checked 40 %, unchecked 60 % (meters/_apple_table.py).
            model = dataclasses.replace(model, relative_uncertainty=apple_uncertainty)
        return model, cpu_ids

    def _memory_basis(self) -> str:
        """What the RAM estimate charges, for its detail."""
        allocation = self.allocation
        if self.memory_used_bytes is not None or allocation is None:
            return "memory in use (total - available)"
        limit = allocation.memory_limit_bytes
        if limit is None:
            return "memory in use (total - available; no memory limit found)"
        current = memory_current_file(allocation)
        where = (
            f"memory.current of {allocation.memory_cgroup}"
            if current is not None
            else "the machine's memory in use"
            if allocation.memory_cgroup is None
            else f"the machine's memory in use: {allocation.memory_cgroup} has no readable "
            "memory.current"
        )
        return (
            f"the job's memory in use ({where}, capped at its {limit / 2**30:.4g} GB "
            f"limit: {allocation.memory_from})"
        )

    def _components(self, model: CpuPowerModel | None) -> list[Component]:
        components: list[Component] = []
        if model is not None:
            components.append(
                Component(
                    name="cpu",
                    kind=ComponentKind.CPU,
                    source=Source(Method.ESTIMATED, CPU_SENSOR, model.detail()),
                    relative_uncertainty=model.relative_uncertainty,
                )
            )
        if self.include_ram:
            components.append(
                Component(
                    name="ram",
                    kind=ComponentKind.RAM,
                    source=Source(
                        Method.ESTIMATED,
                        RAM_SENSOR,
                        f"{RAM_W_PER_GB} W/GB (Green Algorithms memoryPower) x "
                        f"{self._memory_basis()}, GB = 2^30 bytes",
                    ),
                    relative_uncertainty=UNCERTAINTY_RAM,
                )
            )
        return components

    # -- the contract ------------------------------------------------------------------

    def probe(self) -> Probe:
        """Usable wherever psutil works; the reason names the CPU model and power used.

        For an unknown CPU the reason is the one-line :attr:`hint`.
        """
        names = tuple(n for n, on in (("cpu", self.include_cpu), ("ram", self.include_ram)) if on)
        if not names:
            return Probe(self.name, False, "nothing to estimate: CPU and RAM both turned off")
        if not self.include_cpu:
            return Probe(self.name, True, f"estimating memory at {RAM_W_PER_GB} W/GB", names)
        try:
            model, _ = self._resolve()
        except ConfigError as exc:
            return Probe(self.name, False, str(exc))
        except Exception as exc:  # probe never raises: it says why instead
            return Probe(self.name, False, f"cannot estimate the CPU: {exc}")
        if model.hint is not None:
            return Probe(self.name, True, model.hint, names)
        what = model.spec.name if model.spec else "CPU"
        if model.generation is not None and model.tdp_w is None:
            what = (
                f"{model.generation.rule.generation} (cpuinfo rule {model.generation.rule.rule}: "
                f"{model.generation.cpu.signature()})"
            )
        reason = (
            f"estimating {what} at up to {model.max_power_w:.3g} W for "
            f"{model.visible_cpus:g} visible logical CPUs"
            + (f" ({model.cpus_from})" if model.cpus_from else "")
        )
        return Probe(self.name, True, reason, names)

    def start(self, now_s: float) -> list[Component]:
        """Identify the CPU, read the first counters and return ``cpu`` and/or ``ram``.

        Raises:
            ConfigError: a bad TDP or thread count (argument or environment variable), or
                both components turned off.
        """
        if not (self.include_cpu or self.include_ram):
            raise ConfigError("EstimateMeter has nothing to estimate: CPU and RAM both off")
        model: CpuPowerModel | None = None
        if self.include_cpu:
            model, cpu_ids = self._resolve()
            ids = len(cpu_ids) if cpu_ids is not None else model.visible_cpus
            self._utilisation_scale = max(1.0, ids / model.visible_cpus)
            self._times = self.cpu_times or (lambda: psutil_cpu_times(cpu_ids))
            self._last_times = self._times()
        self.cpu_model = model
        self.hint = model.hint if model else None
        if self.include_ram:
            self._memory = self.memory_used_bytes or allocation_memory_reader(
                self._allocation(), psutil_memory_used_bytes
            )
            self._last_memory = self._memory()
        self._last_s = now_s
        self._last_utilisation = 0.0
        self._started = True
        return self._components(model)

    def read(self, now_s: float) -> list[Reading]:
        """Energy of each component since the previous read (power x elapsed time).

        A counter that cannot be read gives a gap reading with a note, never zero.

        Raises:
            MeterError: called before :meth:`start` or after :meth:`close`.
        """
        if not self._started:
            raise MeterError("EstimateMeter.read() called before start() or after close()")
        dt = max(0.0, now_s - self._last_s)
        readings: list[Reading] = []
        if self.cpu_model is not None:
            readings.append(self._read_cpu(self.cpu_model, dt))
        if self.include_ram:
            readings.append(self._read_ram(dt))
        self._last_s = now_s
        return readings

    def _read_cpu(self, model: CpuPowerModel, dt: float) -> Reading:
        if self._times is None:
            return Reading("cpu", None, note="CPU time reader missing (meter not started)")
        try:
            times = self._times()
        except Exception as exc:  # a failed sensor is a gap, never a crash
            return Reading("cpu", None, note=f"CPU times unreadable: {exc}")
        before, self._last_times = self._last_times, times
        if before is not None:
            d_total = times.total_s - before.total_s
            # No clock tick between the two reads: keep the previous interval's value.
            if d_total > 0.0:
                # Of the CPUs charged, not of all the visible ones: 2 busy CPUs of 8 visible
                # under a quota of 2 are a utilisation of 1.
                busy = (times.busy_s - before.busy_s) / d_total * self._utilisation_scale
                self._last_utilisation = min(1.0, max(0.0, busy))
        u = self._last_utilisation
        return Reading("cpu", model.power_w(u) * dt, utilisation=u)

    def _read_ram(self, dt: float) -> Reading:
        if self._memory is None:
            return Reading("ram", None, note="memory reader missing (meter not started)")
        try:
            used = self._memory()
        except Exception as exc:  # a failed sensor is a gap, never a crash
            self._last_memory = None
            return Reading("ram", None, note=f"memory in use unreadable: {exc}")
        # Average the interval's two ends; after a failed read only this end is known.
        before = used if self._last_memory is None else self._last_memory
        self._last_memory = used
        mean_gb = (before + used) / 2 / _BYTES_PER_GB
        return Reading("ram", RAM_W_PER_GB * mean_gb * dt)

    def close(self) -> None:
        """Forget the counters; a later :meth:`start` begins afresh. Safe to call twice."""
        self._started = False
        self._last_times = None
        self._last_memory = None

    @property
    def max_interval_s(self) -> float:
        """60 s: see :data:`MAX_INTERVAL_S`. Units: s."""
        return MAX_INTERVAL_S
