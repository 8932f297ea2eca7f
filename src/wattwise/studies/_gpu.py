"""How busy a GPU is while it trains, and whether it is oversized for the model.

del Rey et al. found that GPU power should match model complexity: a large GPU running a
small model idles most of the time while drawing its idle power. A :class:`GpuMonitor`
samples a :class:`GpuProbe` on a thread during each run; :func:`assess_gpu` turns the samples
into a verdict. :class:`NvmlGpuProbe` reads NVML (the only place here that talks to it, and
it converts mW to W once); :class:`ReplayGpuProbe` plays recorded samples back for tests.
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Self

import numpy as np

from wattwise._errors import MeterError, MeterUnavailable
from wattwise.studies._records import GpuFit, GpuUsage

__all__ = [
    "GpuMonitor",
    "GpuProbe",
    "GpuSample",
    "NvmlGpuProbe",
    "ReplayGpuProbe",
    "assess_gpu",
    "summarize_gpu",
]

_W_PER_MW = 1e-3  # NVML power unit: mW

#: Below this median utilisation (and power share) a GPU counts as oversized.
BUSY_THRESHOLD_FRAC = 0.5
POWER_THRESHOLD_FRAC = 0.5


@dataclass(frozen=True)
class GpuSample:
    """One reading of a GPU.

    Attributes:
        utilisation_frac: share of the last sample period a kernel ran (0..1).
        power_w: power draw, in W.
        power_limit_w: enforced power limit, in W.
        memory_used_frac: share of the board's memory in use (0..1).
    """

    utilisation_frac: float
    power_w: float
    power_limit_w: float
    memory_used_frac: float


class GpuProbe(abc.ABC):
    """Reads one GPU's utilisation, power and memory."""

    @abc.abstractmethod
    def open(self) -> str:
        """Connect; return the GPU's name.

        Raises:
            MeterError: the GPU cannot be read.
        """

    @abc.abstractmethod
    def sample(self) -> GpuSample | None:
        """One reading, or None when this one failed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


class ReplayGpuProbe(GpuProbe):
    """Plays back recorded samples, one per call (then the last one again).

    Args:
        samples: the recorded readings (None: a failed reading).
        gpu_name: the GPU's name.
    """

    def __init__(self, samples: Sequence[GpuSample | None], *, gpu_name: str = "replay") -> None:
        self.samples = list(samples)
        self.gpu_name = gpu_name
        self._i = 0

    def open(self) -> str:
        if not self.samples:
            raise MeterUnavailable("the replayed GPU trace is empty")
        return self.gpu_name

    def sample(self) -> GpuSample | None:
        s = self.samples[min(self._i, len(self.samples) - 1)]
        self._i += 1
        return s


class NvmlGpuProbe(GpuProbe):
    """A CUDA device read through NVML (``pynvml`` from ``wattwise[nvidia]``).

    Args:
        cuda_index: the device's CUDA index (mapped to NVML through ``CUDA_VISIBLE_DEVICES``).
        nvml: the ``pynvml`` module or a stand-in (default: imported on :meth:`open`).
    """

    def __init__(self, cuda_index: int = 0, *, nvml: ModuleType | Any | None = None) -> None:
        self.cuda_index = cuda_index
        self.nvml = nvml
        self._handle: Any = None
        self._limit_w = 0.0

    def open(self) -> str:
        from wattwise.meters._nvml import visible_nvml_indices

        nvml = self._load()
        try:
            nvml.nvmlInit()
            uuids = [
                str(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(int(nvml.nvmlDeviceGetCount()))
            ]
            visible, _ = visible_nvml_indices(os.environ.get("CUDA_VISIBLE_DEVICES"), uuids)
            if self.cuda_index >= len(visible):
                raise MeterUnavailable(f"no NVML device for cuda:{self.cuda_index}")
            self._handle = nvml.nvmlDeviceGetHandleByIndex(visible[self.cuda_index])
            self._limit_w = float(nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle)) * _W_PER_MW
            return str(nvml.nvmlDeviceGetName(self._handle))
        except nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML: {exc} ({type(exc).__name__})") from None

    def _load(self) -> Any:
        if self.nvml is None:
            try:
                import pynvml
            except ImportError:
                raise MeterUnavailable(
                    "pynvml is not installed: install wattwise[nvidia]"
                ) from None
            self.nvml = pynvml
        return self.nvml

    def sample(self) -> GpuSample | None:
        nvml = self.nvml
        assert nvml is not None and self._handle is not None
        try:
            util = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            power_mw = nvml.nvmlDeviceGetPowerUsage(self._handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(self._handle)
        except nvml.NVMLError:
            return None
        return GpuSample(
            utilisation_frac=float(util.gpu) / 100.0,
            power_w=float(power_mw) * _W_PER_MW,
            power_limit_w=self._limit_w,
            memory_used_frac=float(mem.used) / float(mem.total) if mem.total else 0.0,
        )

    def close(self) -> None:
        nvml = self.nvml
        if nvml is not None and self._handle is not None:
            with contextlib.suppress(nvml.NVMLError):  # nothing measured is lost
                nvml.nvmlShutdown()
            self._handle = None


class GpuMonitor:
    """Samples a probe every ``interval_s`` on a thread while in the ``with`` block.

    After the block, :attr:`samples` holds the readings and :attr:`error` says why there
    are none when the probe could not be opened.

    Args:
        probe: the GPU to read.
        interval_s: sampling period, in s (NVML's utilisation covers the last 1/6 to 1 s).
    """

    def __init__(self, probe: GpuProbe, *, interval_s: float = 0.2) -> None:
        self.probe = probe
        self.interval_s = interval_s
        self.samples: list[GpuSample] = []
        self.gpu_name = ""
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        try:
            self.gpu_name = self.probe.open()
        except MeterError as exc:
            self.error = str(exc)
            return self
        self._take()
        self._thread = threading.Thread(target=self._loop, name="wattwise-gpu", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._take()
        self.probe.close()

    def _take(self) -> None:
        s = self.probe.sample()
        if s is not None:
            self.samples.append(s)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()


def summarize_gpu(device: str, gpu_name: str, samples: Sequence[GpuSample]) -> GpuUsage | None:
    """Usage over the samples of one or more runs (None without samples)."""
    if not samples:
        return None
    util = np.array([s.utilisation_frac for s in samples])
    return GpuUsage(
        device=device,
        gpu_name=gpu_name,
        samples=len(samples),
        utilisation_frac=float(np.median(util)),
        utilisation_p90_frac=float(np.percentile(util, 90)),
        power_w=float(np.mean([s.power_w for s in samples])),
        power_limit_w=max(s.power_limit_w for s in samples),
        memory_used_frac=max(s.memory_used_frac for s in samples),
    )


def assess_gpu(
    usage: GpuUsage,
    *,
    busy_threshold_frac: float = BUSY_THRESHOLD_FRAC,
    power_threshold_frac: float = POWER_THRESHOLD_FRAC,
) -> GpuFit:
    """Whether the GPU is oversized: its median utilisation is below ``busy_threshold_frac``
    and its mean power below ``power_threshold_frac`` of its limit (it idled and drew
    little of what it could: a smaller GPU, a larger batch or several jobs would use it
    better). Either figure high means the work keeps it busy."""
    power_share = usage.power_w / usage.power_limit_w if usage.power_limit_w > 0 else 0.0
    figures = (
        f"{usage.gpu_name} busy {usage.utilisation_frac:.0%} of the time (median, p90 "
        f"{usage.utilisation_p90_frac:.0%}), drawing {usage.power_w:.0f} W = {power_share:.0%} "
        f"of its {usage.power_limit_w:.0f} W limit, memory {usage.memory_used_frac:.0%} used"
    )
    if usage.utilisation_frac < busy_threshold_frac and power_share < power_threshold_frac:
        return GpuFit(
            True,
            f"oversized: {figures}; a smaller GPU, larger batches or sharing it between jobs "
            "would spend less energy idling",
        )
    return GpuFit(False, f"matched: {figures}")
