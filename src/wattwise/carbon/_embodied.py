"""Embodied emissions: a run's share of the hardware's manufacturing footprint, an estimate.

Following Boavizta's manufacture methodology (doc.api.boavizta.org, "Manufacture
methodology", allocation ``LINEAR``), each component's manufacturing footprint is spread
evenly over the hours the hardware is in use during its lifetime, and a run is charged its
hours, for the part of the machine it was given::

    embodied_g = factor_kg x 1000 x units x share x duration_s / (lifetime_s x use_ratio)

* ``factor_kg``: the bundled table ``data/embodied_factors.csv`` (cited per row: Boavizta's
  documented component figures, EcoInfo's EcoDiag GPU figure, the ADEME/Hubblo A100 figure
  for data-centre GPUs), or the caller's own factors (a vendor's product carbon footprint,
  a Boavizta API answer);
* ``share``: CPU sockets and the chassis by the CPUs allocated of the machine's logical
  CPUs (the chassis by the larger of the CPU and GPU shares); RAM by the memory allocated
  of the machine's; each GPU used whole;
* the range: the factors' low figures over the longest lifetime, their high figures over
  the shortest.

A stored run's estimate (:func:`embodied_for_run`, from the allocation recorded with it) is
in :mod:`wattwise.carbon._embodied_runs`.

The figure is *never* added into the operational emissions (:class:`CarbonFigures`): it is
reported beside them, labelled as an estimate with its range.

``boaviztapi`` (AGPL-3.0, a FastAPI application) is not a dependency and no code or data
of it is copied: its published figures are cited on each row. To use its full model, query
it yourself and pass its figures as ``factors``.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import psutil

from wattwise._errors import ConfigError, DataFileError
from wattwise.meters import Allocation

__all__ = [
    "DEFAULT_LIFETIME_RANGE_YEARS",
    "DEFAULT_LIFETIME_YEARS",
    "EMBODIED_LABEL",
    "EmbodiedComponent",
    "EmbodiedFactor",
    "EmbodiedFigures",
    "Hardware",
    "embodied",
    "embodied_factors",
    "is_datacenter_gpu",
]

#: Boavizta's default server lifetime (35,040 h of use).
DEFAULT_LIFETIME_YEARS: Final = 4.0
#: A short refresh cycle (3 years) to the 6 years Microsoft (2022) and Alphabet (2023) adopted
#: for their servers' useful life.
DEFAULT_LIFETIME_RANGE_YEARS: Final = (3.0, 6.0)
#: What the figure is, wherever it is shown.
EMBODIED_LABEL: Final = (
    "estimated embodied emissions (the hardware's manufacturing footprint, this run's share); "
    "not included in the operational emissions"
)
_SECONDS_PER_YEAR: Final = 365.25 * 24 * 3600
_METHOD: Final = "estimated (embodied: Boavizta component method, linear over the lifetime)"
_COMPONENTS: Final = ("cpu", "ram", "gpu", "gpu-datacenter", "chassis")
# NVIDIA data-centre GPUs with HBM: the family the gpu-datacenter row (an A100's) stands for.
_DATACENTER_GPU: Final = re.compile(r"\b(?:GB200|GH200|[ABH](?:100|800)|H200|B200)\b", re.I)


def is_datacenter_gpu(name: str) -> bool:
    """Whether a GPU's name (NVML's, e.g. ``NVIDIA H100 80GB HBM3``) is a data-centre part
    charged the ``gpu-datacenter`` factor (A100, A800, H100, H800, H200, GH200, B100, B200,
    GB200) rather than the generic ``gpu`` one."""
    return _DATACENTER_GPU.search(name) is not None


@dataclass(frozen=True)
class EmbodiedFactor:
    """The manufacturing footprint of one unit of a component, with its spread and source.

    Attributes:
        component: ``cpu``, ``ram``, ``gpu``, ``gpu-datacenter`` or ``chassis``.
        per: the unit (``socket``, ``GB``, ``GPU``, ``machine``).
        low_kg: the low figure, in kgCO2e per unit.
        central_kg: the central figure, in kgCO2e per unit.
        high_kg: the high figure, in kgCO2e per unit.
        source: who published the figures.
        url: where.
        year: year of the source, or None.
        licence: the terms the figures are used under.
        derivation: how wattwise computed the row from the source.
    """

    component: str
    per: str
    low_kg: float
    central_kg: float
    high_kg: float
    source: str
    url: str = ""
    year: int | None = None
    licence: str = ""
    derivation: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.low_kg <= self.central_kg <= self.high_kg < math.inf:
            raise ConfigError(
                f"embodied factor {self.component!r}: need 0 <= low <= central <= high, "
                f"got {self.low_kg!r}, {self.central_kg!r}, {self.high_kg!r} kgCO2e"
            )


@functools.cache
def embodied_factors() -> Mapping[str, EmbodiedFactor]:
    """The bundled factors by component (``data/embodied_factors.csv``, each row cited)."""
    name = "embodied_factors.csv"
    text = (resources.files("wattwise.carbon") / "data" / name).read_text(encoding="utf-8")
    found: dict[str, EmbodiedFactor] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            factor = EmbodiedFactor(
                component=row["component"],
                per=row["per"],
                low_kg=float(row["low_kg"]),
                central_kg=float(row["central_kg"]),
                high_kg=float(row["high_kg"]),
                source=row["source"],
                url=row["url"],
                year=int(row["year"]) if row["year"] else None,
                licence=row["licence"],
                derivation=row["derivation"],
            )
        except (KeyError, ValueError, ConfigError) as exc:
            raise DataFileError(f"bundled table {name}:{line} is malformed ({exc})") from None
        found[factor.component] = factor
    return MappingProxyType(found)


def _virtual_machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU flags say this is a guest of a hypervisor (Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def _sockets(root: Path = Path("/sys/devices/system/cpu")) -> int | None:
    ids = set()
    for path in root.glob("cpu[0-9]*/topology/physical_package_id"):
        try:
            ids.add(path.read_text(encoding="ascii").strip())
        except OSError:
            continue
    return len(ids) or None


@dataclass(frozen=True)
class Hardware:
    """The machine whose manufacturing footprint is shared out.

    Attributes:
        cpu_sockets: CPU packages.
        logical_cpus: logical CPUs of the machine (the denominator of the CPU share).
        ram_gb: installed memory, in GB (2^30 bytes), or None where unknown (RAM is then
            not counted, and a note says so).
        gpus: GPUs of the machine (the denominator of the chassis's GPU share).
        source: where these figures come from.
    """

    cpu_sockets: int = 1
    logical_cpus: int = 1
    ram_gb: float | None = None
    gpus: int = 0
    source: str = "given"

    def __post_init__(self) -> None:
        if self.cpu_sockets < 1 or self.logical_cpus < 1 or self.gpus < 0:
            raise ConfigError(
                "hardware needs at least 1 CPU socket and 1 logical CPU and no negative GPU "
                f"count, got {self.cpu_sockets} sockets, {self.logical_cpus} CPUs, "
                f"{self.gpus} GPUs"
            )
        if self.ram_gb is not None and not 0 <= self.ram_gb < math.inf:
            raise ConfigError(f"RAM {self.ram_gb!r} GB must be a finite number >= 0")

    @classmethod
    def detect(cls, *, gpus: int = 0) -> Hardware:
        """This machine: sockets from sysfs topology, logical CPUs and memory from psutil.

        Args:
            gpus: the machine's GPUs (not detected here: the caller knows them from NVML or
                the run's components).
        """
        sockets = _sockets()
        source = "detected on this machine"
        if not sockets:
            source += " (socket count unreadable: 1 assumed)"
        if _virtual_machine():
            source += (
                "; a virtual machine, charged as a whole server: for a cloud instance give "
                "the host's Hardware and cpus= to charge its share"
            )
        return cls(
            cpu_sockets=sockets or 1,
            logical_cpus=psutil.cpu_count() or 1,
            ram_gb=psutil.virtual_memory().total / 2**30,
            gpus=gpus,
            source=source,
        )


@dataclass(frozen=True)
class EmbodiedComponent:
    """One component's part of a run's embodied emissions.

    Attributes:
        component: ``cpu``, ``ram``, ``gpu``, ``gpu-datacenter`` or ``chassis``.
        units: how many units of the factor (sockets, GB, GPUs, machines).
        share: the fraction of those units charged to the run (0..1).
        embodied_g: central figure, in gCO2e.
        low_g: low end of the range, in gCO2e.
        high_g: high end of the range, in gCO2e.
        factor: the factor used.
    """

    component: str
    units: float
    share: float
    embodied_g: float
    low_g: float
    high_g: float
    factor: EmbodiedFactor

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "component": self.component,
            "units": self.units,
            "per": self.factor.per,
            "share": self.share,
            "embodied_g": self.embodied_g,
            "low_g": self.low_g,
            "high_g": self.high_g,
            "factor_kg_per_unit": self.factor.central_kg,
            "source": self.factor.source,
        }


@dataclass(frozen=True)
class EmbodiedFigures:
    """A run's (or runs') share of the hardware's manufacturing emissions: an estimate.

    Never part of :class:`~wattwise.tracking.CarbonFigures`; shown beside it.

    Attributes:
        embodied_g: central estimate, in gCO2e.
        low_g: low end (low factors, longest lifetime), in gCO2e.
        high_g: high end (high factors, shortest lifetime), in gCO2e.
        duration_s: the time charged, in s.
        lifetime_years: the lifetime of the central figure, in years.
        lifetime_low_years: the shortest lifetime of the range, in years.
        lifetime_high_years: the longest lifetime of the range, in years.
        use_ratio: the fraction of its lifetime the hardware is in use (0..1].
        components: per component.
        method: how it was estimated.
        sources: who published the factors.
        notes: what was assumed or left out.
    """

    embodied_g: float
    low_g: float
    high_g: float
    duration_s: float
    lifetime_years: float
    lifetime_low_years: float
    lifetime_high_years: float
    use_ratio: float
    components: tuple[EmbodiedComponent, ...] = ()
    method: str = _METHOD
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """What the figure is (:data:`EMBODIED_LABEL`)."""
        return EMBODIED_LABEL

    def summary(self) -> str:
        """One line: the estimate, its range and what it is."""
        return (
            f"~{self.embodied_g:.3g} gCO2e (range {self.low_g:.3g}-{self.high_g:.3g}; "
            f"lifetime {self.lifetime_years:g} y, {self.lifetime_low_years:g}-"
            f"{self.lifetime_high_years:g} y): {EMBODIED_LABEL}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``embodied`` object of ``--json`` outputs)."""
        return {
            "embodied_g": self.embodied_g,
            "low_g": self.low_g,
            "high_g": self.high_g,
            "label": EMBODIED_LABEL,
            "method": self.method,
            "duration_s": self.duration_s,
            "lifetime_years": self.lifetime_years,
            "lifetime_range_years": [self.lifetime_low_years, self.lifetime_high_years],
            "use_ratio": self.use_ratio,
            "components": [c.to_dict() for c in self.components],
            "sources": list(self.sources),
            "notes": list(self.notes),
        }


def _check(duration_s: float, lifetime: float, low: float, high: float, use: float) -> None:
    if not 0 <= duration_s < math.inf:
        raise ConfigError(f"duration {duration_s!r} s must be a finite number >= 0")
    if not 0 < lifetime < math.inf:
        raise ConfigError(f"lifetime {lifetime!r} years must be a positive number")
    if not 0 < low <= lifetime <= high < math.inf:
        raise ConfigError(
            f"lifetime range {low!r}-{high!r} years must be positive and contain the "
            f"lifetime {lifetime!r}"
        )
    if not 0 < use <= 1:
        raise ConfigError(f"use ratio {use!r} must be in (0, 1]: the share of the lifetime in use")


def _share(used: float | None, total: float, what: str, notes: list[str]) -> float:
    if used is None:
        return 1.0
    if used < 0:
        raise ConfigError(f"{what} {used!r} must be >= 0")
    if used > total:
        notes.append(f"{what} {used:g} exceed the machine's {total:g}: the whole machine charged")
        return 1.0
    return used / total if total > 0 else 1.0


def embodied(
    hardware: Hardware,
    duration_s: float,
    *,
    cpus: float | None = None,
    ram_gb: float | None = None,
    gpus: int | None = None,
    datacenter_gpus: int = 0,
    allocation: Allocation | None = None,
    lifetime_years: float = DEFAULT_LIFETIME_YEARS,
    lifetime_range_years: tuple[float, float] | None = None,
    use_ratio: float = 1.0,
    factors: Mapping[str, EmbodiedFactor] | None = None,
) -> EmbodiedFigures:
    """The embodied emissions of ``duration_s`` on ``hardware``: an estimate with its range.

    Args:
        hardware: the machine (:meth:`Hardware.detect` for this one).
        duration_s: the time charged, in s.
        cpus: logical CPUs given to the run (default: the allocation's, else all).
        ram_gb: memory given to the run, in GB (default: the allocation's limit, else all).
        gpus: GPUs the run used, each charged whole (default: all of the machine's).
        datacenter_gpus: how many of those are data-centre GPUs (:func:`is_datacenter_gpu`),
            charged the ``gpu-datacenter`` factor instead of ``gpu``.
        allocation: what the job was given (:func:`wattwise.meters.read_allocation`).
        lifetime_years: the hardware's lifetime of the central figure.
        lifetime_range_years: the shortest and longest lifetime of the range (default:
            :data:`DEFAULT_LIFETIME_RANGE_YEARS`, widened to contain ``lifetime_years``).
        use_ratio: the fraction of the lifetime the hardware is in use (1: always); a lower
            ratio charges each hour of use more.
        factors: per-component factors replacing the bundled ones (missing ones: bundled).

    Raises:
        ConfigError: a negative or zero lifetime, a range not containing it, a use ratio
            outside (0, 1], a negative duration or share.
    """
    if lifetime_range_years is None:
        low, high = DEFAULT_LIFETIME_RANGE_YEARS
        lifetime_range_years = (min(low, lifetime_years), max(high, lifetime_years))
    low_life, high_life = lifetime_range_years
    _check(duration_s, lifetime_years, low_life, high_life, use_ratio)
    table = {**embodied_factors(), **(factors or {})}
    notes: list[str] = []
    if cpus is None and allocation is not None:
        cpus = allocation.cpus
        notes.append(f"CPUs charged from the allocation ({allocation.cpus_from})")
    if ram_gb is None and allocation is not None and allocation.memory_limit_bytes is not None:
        ram_gb = allocation.memory_limit_bytes / 2**30
    used_gpus = hardware.gpus if gpus is None else gpus
    if used_gpus < 0:
        raise ConfigError(f"GPUs {used_gpus!r} must be >= 0")
    if not 0 <= datacenter_gpus <= used_gpus:
        raise ConfigError(
            f"data-centre GPUs {datacenter_gpus!r} must be between 0 and the {used_gpus} used"
        )
    cpu_share = _share(cpus, hardware.logical_cpus, "CPUs", notes)
    gpu_share = _share(float(used_gpus), float(hardware.gpus or used_gpus), "GPUs", notes)
    units: dict[str, tuple[float, float]] = {
        "cpu": (float(hardware.cpu_sockets), cpu_share),
        "gpu": (float(used_gpus - datacenter_gpus), 1.0),
        "gpu-datacenter": (float(datacenter_gpus), 1.0),
        "chassis": (1.0, max(cpu_share, gpu_share if used_gpus else 0.0)),
    }
    if hardware.ram_gb is None:
        notes.append("RAM not counted: the machine's memory size is unknown")
    else:
        units["ram"] = (hardware.ram_gb, _share(ram_gb, hardware.ram_gb, "RAM GB", notes))
    in_use_s = duration_s / use_ratio
    parts = []
    for name in _COMPONENTS:
        if name not in units or units[name][0] == 0:
            continue
        count, share = units[name]
        f = table[name]
        grams = 1000.0 * count * share * in_use_s / _SECONDS_PER_YEAR
        parts.append(
            EmbodiedComponent(
                component=name,
                units=count,
                share=share,
                embodied_g=grams * f.central_kg / lifetime_years,
                low_g=grams * f.low_kg / high_life,
                high_g=grams * f.high_kg / low_life,
                factor=f,
            )
        )
    notes.append(f"hardware: {hardware.source}")
    return EmbodiedFigures(
        embodied_g=sum(p.embodied_g for p in parts),
        low_g=sum(p.low_g for p in parts),
        high_g=sum(p.high_g for p in parts),
        duration_s=duration_s,
        lifetime_years=lifetime_years,
        lifetime_low_years=low_life,
        lifetime_high_years=high_life,
        use_ratio=use_ratio,
        components=tuple(parts),
        sources=tuple(dict.fromkeys(p.factor.source for p in parts)),
        notes=tuple(notes),
    )
