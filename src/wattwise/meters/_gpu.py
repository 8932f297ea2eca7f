"""How busy a GPU is: utilisation, power and memory, read by a probe on a thread.

A :class:`GpuProbe` reads one GPU; a :class:`GpuMonitor` samples it every ``interval_s``
on a thread while its ``with`` block runs (the environment study uses it to tell whether a
GPU is oversized for the model). :class:`NvmlGpuProbe` reads NVML with the NVML meter's
loading, error wording and ``CUDA_VISIBLE_DEVICES`` mapping (``_nvml.py``), and converts mW
to W once; :class:`ReplayGpuProbe` plays recorded samples back.
:class:`wattwise.testing.GpuProbeContract` is the contract test both pass.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Self

from wattwise._errors import MeterError, MeterUnavailable
from wattwise.meters._allocation import read_allocation
from wattwise.meters._cuda_visible import visible_nvml_indices
from wattwise.meters._nvml import (
    _INSTALL_HINT,
    _W_PER_MW,
    _describe,
    _import_pynvml,
    _init_failure,
    _shutdown_quietly,
)

__all__ = ["GpuMonitor", "GpuProbe", "GpuSample", "NvmlGpuProbe", "ReplayGpuProbe"]


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
        """Release the connection (further calls do nothing)."""


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
        nvml: the ``pynvml`` module or a stand-in such as
            :func:`wattwise.testing.make_fake_nvml`'s (default: imported on :meth:`open`).
    """

    def __init__(self, cuda_index: int = 0, *, nvml: ModuleType | Any | None = None) -> None:
        self.cuda_index = cuda_index
        self.nvml = nvml
        self._handle: Any = None
        self._limit_w = 0.0

    def open(self) -> str:
        """Open NVML and the device.

        Raises:
            MeterUnavailable: pynvml, the driver or the device is missing.
        """
        nvml = self._load()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML: {_init_failure(exc)}") from None
        try:
            uuids = [
                str(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))
                for i in range(int(nvml.nvmlDeviceGetCount()))
            ]
            # CUDA_VISIBLE_DEVICES, else SLURM's GPUs (the NVML meter's rule).
            visible, _ = visible_nvml_indices(read_allocation().gpus, uuids)
            if self.cuda_index >= len(visible):
                raise MeterUnavailable(f"no NVML device for cuda:{self.cuda_index}")
            handle = nvml.nvmlDeviceGetHandleByIndex(visible[self.cuda_index])
            self._limit_w = float(nvml.nvmlDeviceGetEnforcedPowerLimit(handle)) * _W_PER_MW
            name = str(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:
            _shutdown_quietly(nvml)
            raise MeterUnavailable(f"NVML: {_describe(exc)}") from None
        except MeterUnavailable:
            _shutdown_quietly(nvml)
            raise
        self._handle = handle
        return name

    def _load(self) -> Any:
        if self.nvml is None:
            try:
                self.nvml = _import_pynvml()
            except ImportError:
                raise MeterUnavailable(_INSTALL_HINT) from None
        return self.nvml

    def sample(self) -> GpuSample | None:
        nvml = self.nvml
        if nvml is None or self._handle is None:
            raise MeterError("NvmlGpuProbe.sample() called before open() or after close()")
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
        if self.nvml is not None and self._handle is not None:
            self._handle = None
            _shutdown_quietly(self.nvml)  # nothing measured is lost


class GpuMonitor:
    """Samples a probe every ``interval_s`` on a thread while in the ``with`` block.

    It takes one sample on entering and one on leaving, so even a block shorter than the
    interval has readings. After the block, :attr:`samples` holds the readings and
    :attr:`error` says why there are none when the probe could not be opened.

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
