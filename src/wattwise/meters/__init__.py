"""Energy sources: the meter contract, RAPL, NVML, AMD SMI, powermetrics (Apple silicon),
the estimate, replay, and detection;
the GPU probe (utilisation, power, memory) and its monitor thread; what the job was given
(:class:`Allocation`: SLURM, ``CUDA_VISIBLE_DEVICES``, cgroup v2 limits).

Detection probes meters in a fixed order (:data:`PROBE_ORDER`); see :func:`detect_meters`.
"""

from wattwise.meters._allocation import Allocation, read_allocation
from wattwise.meters._amdsmi import AmdSmiMeter
from wattwise.meters._apple_table import AppleSiliconSpec, lookup_apple_silicon
from wattwise.meters._base import (
    Component,
    ComponentKind,
    Meter,
    Method,
    Probe,
    Reading,
    Source,
)
from wattwise.meters._cpu_identify import CpuGeneration, identify_generation
from wattwise.meters._cpu_table import CpuSpec, local_cpu_brand, lookup_cpu
from wattwise.meters._cpuinfo import CpuInfo, read_cpuinfo
from wattwise.meters._estimate import EstimateMeter
from wattwise.meters._gpu import GpuMonitor, GpuProbe, GpuSample, NvmlGpuProbe, ReplayGpuProbe
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._powermetrics import PowermetricsMeter
from wattwise.meters._rapl import CpuIdentity, RaplMeter
from wattwise.meters._registry import PROBE_ORDER, Detection, detect_meters
from wattwise.meters._replay import ReplayMeter, TraceInterval

__all__ = [
    "PROBE_ORDER",
    "Allocation",
    "AmdSmiMeter",
    "AppleSiliconSpec",
    "Component",
    "ComponentKind",
    "CpuGeneration",
    "CpuIdentity",
    "CpuInfo",
    "CpuSpec",
    "Detection",
    "EstimateMeter",
    "GpuMonitor",
    "GpuProbe",
    "GpuSample",
    "Meter",
    "Method",
    "NvmlGpuProbe",
    "NvmlMeter",
    "PowermetricsMeter",
    "Probe",
    "RaplMeter",
    "Reading",
    "ReplayGpuProbe",
    "ReplayMeter",
    "Source",
    "TraceInterval",
    "detect_meters",
    "identify_generation",
    "local_cpu_brand",
    "lookup_apple_silicon",
    "lookup_cpu",
    "read_allocation",
    "read_cpuinfo",
]
