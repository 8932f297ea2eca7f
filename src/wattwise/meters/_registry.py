"""Detection: which meters work here, probed in one fixed order.

Probe order: ``rapl``, ``nvml``, ``amdsmi``, ``powermetrics``, ``estimate``. The CPU is
measured by RAPL where its counters can be read, by ``powermetrics`` on an Apple-silicon
Mac run as root (with its GPU and Neural Engine), and estimated otherwise (including when
RAPL or powermetrics exists but may not be read: the reason says how to fix that). NVIDIA
GPUs are measured by NVML when it works, AMD GPUs by AMD SMI (only where NVML measures
none: both name their components ``gpu:<index>``). Memory is estimated only when no RAPL
``dram`` domain measures it. What the job was given
(:func:`~wattwise.meters._allocation.read_allocation`: SLURM, CUDA, cgroup v2) is read
once and handed to the NVML meter (its GPUs) and the estimate (its CPUs and memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from wattwise.meters._allocation import Allocation, read_allocation
from wattwise.meters._base import Meter, Probe

__all__ = ["PROBE_ORDER", "Detection", "detect_meters"]

PROBE_ORDER = ("rapl", "nvml", "amdsmi", "powermetrics", "estimate")


@dataclass(frozen=True)
class Detection:
    """What detection found.

    Attributes:
        meters: the meters to use, in probe order.
        probes: every probe's answer, in probe order (found and not found, with reasons).
        notes: one-line explanations of fallbacks (e.g. RAPL not readable: estimating).
        allocation: what the job was given (CPUs, memory, GPUs) and where that came from.
    """

    meters: tuple[Meter, ...]
    probes: tuple[Probe, ...]
    notes: tuple[str, ...]
    allocation: Allocation | None = None


def detect_meters(
    *,
    cpu_tdp_w: float | None = None,
    powercap_root: str | None = None,
    nvml: ModuleType | None = None,
    amdsmi: Any = None,
    environ: Mapping[str, str] | None = None,
    allocation: Allocation | None = None,
) -> Detection:
    """Probe every meter in :data:`PROBE_ORDER` and choose the ones to use.

    Args:
        cpu_tdp_w: CPU power to assume for the estimate (and for RAPL's wrap period when the
            zones state no maximum power), in W.
        powercap_root: powercap sysfs root (default ``WATTWISE_POWERCAP_ROOT`` or
            ``/sys/class/powercap``).
        nvml: a module with pynvml's API (tests pass a fake).
        amdsmi: a module with amdsmi's API (tests pass a fake).
        environ: the environment to read (default ``os.environ``).
        allocation: what the job was given; default :func:`read_allocation` of ``environ``.
    """
    from wattwise.meters._amdsmi import AmdSmiMeter
    from wattwise.meters._estimate import EstimateMeter
    from wattwise.meters._nvml import NvmlMeter
    from wattwise.meters._powermetrics import PowermetricsMeter
    from wattwise.meters._rapl import RaplMeter

    given = allocation or read_allocation(environ=environ)
    rapl = RaplMeter(root=powercap_root, cpu_tdp_w=cpu_tdp_w)
    gpu = NvmlMeter(nvml=nvml, environ=environ, allocation=given)
    rapl_probe = rapl.probe()
    gpu_probe = gpu.probe()
    amd = AmdSmiMeter(amdsmi=amdsmi, environ=environ)
    amd_probe = amd.probe()
    apple = PowermetricsMeter()
    apple_probe = apple.probe()
    cpu_measured = rapl_probe.available or apple_probe.available
    has_dram = rapl_probe.available and any("dram" in c for c in rapl_probe.components)
    estimate = EstimateMeter(
        cpu_tdp_w=cpu_tdp_w,
        include_cpu=not cpu_measured,
        include_ram=not has_dram,
        environ=environ,
        allocation=given,
    )
    meters: list[Meter] = []
    notes: list[str] = []
    if rapl_probe.available:
        meters.append(rapl)
    elif apple_probe.available:
        meters.append(apple)
    elif apple_probe.components:  # a Mac on Apple silicon, not run as root
        notes.append(f"CPU energy is estimated: {apple_probe.reason}")
    else:
        notes.append(f"CPU energy is estimated: {rapl_probe.reason}")
    if gpu_probe.available:
        meters.append(gpu)
    if amd_probe.available and not gpu_probe.available:
        meters.append(amd)
    elif amd_probe.available:
        notes.append("AMD GPUs found beside NVIDIA ones: only NVML's are measured")
    estimate_probe = estimate.probe()
    if not rapl_probe.available or not has_dram:
        meters.append(estimate)
    notes.extend(f"allocation: {note}" for note in given.notes)
    probes = (rapl_probe, gpu_probe, amd_probe, apple_probe, estimate_probe)
    return Detection(tuple(meters), probes, tuple(notes), given)
