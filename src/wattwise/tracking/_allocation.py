"""What a run is given and the machine's size, read once at its start to be stored with it.

The record (:class:`~wattwise._records.RunAllocation`) lets a stored run be charged its
share of the machine long after it ran, on any machine (the embodied emissions,
docs/carbon.md).
"""

from __future__ import annotations

import psutil

from wattwise._records import RunAllocation
from wattwise.meters._allocation import read_allocation

__all__ = ["read_run_allocation"]


def read_run_allocation() -> RunAllocation:
    """This process's allocation (:func:`wattwise.meters.read_allocation`: affinity, SLURM,
    cgroup v2, the visible GPUs) and this machine's logical CPUs and memory; never raises."""
    try:
        memory: int | None = int(psutil.virtual_memory().total)
    except (OSError, psutil.Error):
        memory = None
    return RunAllocation.of(
        read_allocation(),
        machine_logical_cpus=psutil.cpu_count() or 1,
        machine_memory_bytes=memory,
    )
