"""Which CPU the RAPL counters belong to, and the uncertainty that follows from it.

RAPL is a measurement on some generations and a model on others; :class:`CpuIdentity`
reads the vendor, family and model from ``/proc/cpuinfo`` and gives each zone kind its
one-sigma relative uncertainty (the sources are in the comment below and in
docs/meters-rapl.md, "Uncertainty").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wattwise.meters._base import ComponentKind
from wattwise.meters._cpuinfo import read_cpuinfo

__all__ = ["CpuIdentity"]

# Intel and AMD document no accuracy for RAPL energy counters; the one-sigma relative
# uncertainties below are approximate figures read from the published validations (see
# docs/meters-rapl.md, "Uncertainty"), by generation and zone:
# * Intel Sandy Bridge and Ivy Bridge (before Haswell): RAPL is a model of activity
#   counters, not a measurement (Haehnel et al. 2012; Hackenberg et al., ISPASS 2013):
#   package 10%; DRAM, modelled from memory traffic, 20% (Desrochers et al., MEMSYS 2016).
# * Intel Haswell and later: Haswell-EP moved from a model to a measurement (Hackenberg
#   et al., IPDPSW 2015); package readings track plug power within a few % (Khan et al.,
#   TOMPECS 2018): package 5%. DRAM on Haswell-EP and later server parts is measured at
#   the voltage regulator and close to actual power (Desrochers et al.): 5%; on client
#   parts it is a model offset in a way that varies between systems: 15%. psys has no
#   published validation: 10%.
# * AMD Zen (and Hygon): RAPL values come from a power model, and the package figure leaves
#   out parts of the I/O die (Schoene et al. 2021, "Energy Efficiency Aspects of the AMD
#   Zen 2 Architecture"): 15%; a DRAM zone, where one appears, 20%.
# * Unknown vendor or no /proc/cpuinfo: the largest figure above for the zone's kind.
_UNCERTAINTY_BY_GENERATION: dict[str, dict[ComponentKind, float]] = {
    "intel-model": {
        ComponentKind.CPU: 0.10,
        ComponentKind.CPU_CORE: 0.10,
        ComponentKind.CPU_UNCORE: 0.10,
        ComponentKind.DRAM: 0.20,
        ComponentKind.PSYS: 0.10,
    },
    "intel-server": {
        ComponentKind.CPU: 0.05,
        ComponentKind.CPU_CORE: 0.05,
        ComponentKind.CPU_UNCORE: 0.05,
        ComponentKind.DRAM: 0.05,
        ComponentKind.PSYS: 0.10,
    },
    "intel-client": {
        ComponentKind.CPU: 0.05,
        ComponentKind.CPU_CORE: 0.05,
        ComponentKind.CPU_UNCORE: 0.05,
        ComponentKind.DRAM: 0.15,
        ComponentKind.PSYS: 0.10,
    },
    "amd-zen": {
        ComponentKind.CPU: 0.15,
        ComponentKind.CPU_CORE: 0.15,
        ComponentKind.CPU_UNCORE: 0.15,
        ComponentKind.DRAM: 0.20,
        ComponentKind.PSYS: 0.15,
    },
}
_UNKNOWN_GENERATION = "unknown"
_GENERATION_LABELS = {
    "intel-model": "Intel Sandy/Ivy Bridge: RAPL is a model",
    "intel-server": "Intel Haswell-EP or later server: measured",
    "intel-client": "Intel Haswell or later: package measured, DRAM modelled",
    "amd-zen": "AMD Zen: a power model's estimate",
    _UNKNOWN_GENERATION: "CPU not identified: the widest figures",
}
_UNCERTAINTY_BY_GENERATION[_UNKNOWN_GENERATION] = {
    kind: max(table[kind] for table in _UNCERTAINTY_BY_GENERATION.values())
    for kind in _UNCERTAINTY_BY_GENERATION["intel-model"]
}
# Intel family 6 models whose RAPL is a model: Sandy Bridge (0x2A), Sandy Bridge-EP (0x2D),
# Ivy Bridge (0x3A), Ivy Bridge-EP (0x3E).
_INTEL_MODELLED = frozenset({0x2A, 0x2D, 0x3A, 0x3E})
# Intel family 6 server models (Haswell-EP and later, and Xeon Phi) whose DRAM domain is
# measured: Haswell-X 0x3F, Broadwell-X/-D 0x4F/0x56, Skylake/Cascade/Cooper Lake-SP 0x55,
# Knights Landing/Mill 0x57/0x85, Ice Lake-SP/-D 0x6A/0x6C, Sapphire/Emerald Rapids
# 0x8F/0xCF, Granite Rapids 0xAD/0xAE, Sierra Forest 0xAF.
_INTEL_SERVER = frozenset(
    {0x3F, 0x4F, 0x56, 0x55, 0x57, 0x85, 0x6A, 0x6C, 0x8F, 0xCF, 0xAD, 0xAE, 0xAF}
)


@dataclass(frozen=True)
class CpuIdentity:
    """Which CPU the RAPL counters belong to: it sets their uncertainty (a model or a
    measurement depends on the vendor and generation).

    Attributes:
        vendor: ``/proc/cpuinfo``'s ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``,
            ``HygonGenuine``), or ``""`` when unknown.
        family: its ``cpu family``, or None.
        model: its ``model`` number, or None.
    """

    vendor: str = ""
    family: int | None = None
    model: int | None = None

    @classmethod
    def from_cpuinfo(cls, path: str | Path = "/proc/cpuinfo") -> CpuIdentity:
        """The first processor's identity in a cpuinfo file; unknown if it cannot be read."""
        info = read_cpuinfo(path)
        return cls(vendor=info.vendor_id, family=info.family, model=info.model)

    @property
    def generation(self) -> str:
        """The row of the uncertainty table these counters fall in."""
        if self.vendor == "GenuineIntel" and self.family == 6 and self.model is not None:
            if self.model in _INTEL_MODELLED:
                return "intel-model"
            return "intel-server" if self.model in _INTEL_SERVER else "intel-client"
        if self.vendor in ("AuthenticAMD", "HygonGenuine") and (self.family or 0) >= 0x17:
            return "amd-zen"
        return _UNKNOWN_GENERATION

    def relative_uncertainty(self, kind: ComponentKind) -> float:
        """The one-sigma relative uncertainty of a zone of ``kind`` on this CPU."""
        return _UNCERTAINTY_BY_GENERATION[self.generation][kind]
