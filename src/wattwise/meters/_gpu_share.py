"""A process tree's share of one GPU, from NVML's per-process utilisation samples.

When several processes share a GPU, process scope charges each the board's energy times
its share of the GPU's utilisation in the interval (issue 17 §4). The driver keeps a
sample every 1/6-1 s with, for each process that ran kernels in it, the share of the
period its kernels kept the SMs busy (``nvmlDeviceGetProcessUtilization``; ``smUtil`` in
%). Over the samples newer than the previous read::

    share = sum(smUtil of the tree's pids) / sum(smUtil of every pid)

That is the share of the GPU's *busy* time, as process scope's CPU share is of busy CPU
time: a lone process is charged the whole board, idle power included. An interval with no
sample (``NVMLError_NotFound``: no process ran a kernel) keeps the previous share, as the
CPU share does; before the first sample it is 0, so two trackers on two processes never
count one idle board twice. A read that fails keeps the previous share too.

Where the driver gives no samples (``NVMLError_NotSupported``: pre-Maxwell boards, MIG mode
and MIG device handles, vGPU guests), the whole device is charged and the component's
detail says so: ``process scope: the whole device``. The split by SM time is a model: a
process's power is not exactly proportional to its SM time (memory-bound kernels draw
less), so the share is an attribution, not a measurement.

NVML reports the host's pids: inside a container with its own pid namespace no sample
matches the tree, and the share is 0 (docs/meters-nvml.md).
"""

from __future__ import annotations

from collections.abc import Collection
from types import ModuleType
from typing import Any

__all__ = ["ProcessUtilisationShare"]


class ProcessUtilisationShare:
    """The per-process utilisation samples of one GPU, read between calls.

    Args:
        nvml: the pynvml module (or the fake's).
        handle: the GPU's NVML handle (a board; a MIG device handle is not supported).

    Attributes:
        supported: whether the driver gives per-process samples for this GPU.
        why_not: the NVML error that says it does not (empty when supported).
        share: the share the last :meth:`read` gave (0..1).
    """

    def __init__(self, nvml: ModuleType, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle
        self._last_us = 0
        self.share = 0.0
        self.supported = True
        self.why_not = ""
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(handle, 0)
        except nvml.NVMLError_NotFound:
            return  # supported; no process has run a kernel in the driver's buffer
        except nvml.NVMLError as error:
            self.supported = False
            self.why_not = f"{error} ({type(error).__name__})"
            return
        # Samples from before the start belong to no interval of the run.
        self._last_us = max((int(s.timeStamp) for s in samples), default=0)

    def read(self, pids: Collection[int]) -> float:
        """The tree's share of the GPU's busy time since the previous read (0..1)."""
        if not self.supported:
            return 1.0
        nvml = self._nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(self._handle, self._last_us)
        except nvml.NVMLError:
            return self.share  # NotFound (no kernel ran) or a failed read: keep the last
        ours = total = 0
        for sample in samples:
            self._last_us = max(self._last_us, int(sample.timeStamp))
            total += int(sample.smUtil)
            if int(sample.pid) in pids:
                ours += int(sample.smUtil)
        if total > 0:
            self.share = min(1.0, ours / total)
        return self.share
