"""A process tree's share of one AMD GPU, from AMD SMI's per-process engine time.

The AMD counterpart of ``_gpu_share.py`` (NVML), with the same contract for process scope
(issue 19 §2): the board's energy times the tree's share of the GPU's busy time in the
interval. ``amdsmi_get_gpu_process_list`` lists, per GPU, each process with its
``engine_usage["gfx"]``: the ns its DRM clients kept the gfx engine busy since they opened
the device (the kernel's ``drm-engine-gfx`` in ``/proc/<pid>/fdinfo``, a cumulative count).
Over the counters' increase since the previous read::

    share = sum(gfx ns gained by the tree's pids) / sum(gfx ns gained by every pid)

ROCm's compute work (HIP, PyTorch) runs on KFD user-mode queues that the DRM scheduler does
not see, so its gfx time stays 0 (ROCm/amdsmi issue 130; amdgpu_top issue 49). Where no
process gained gfx time, the share is the tree's part of the CUs the processes occupy
(``cu_occupancy``, KFD's snapshot at the read; amdsmi 7.0's list has it, "N/A" where the
kernel does not give it). No busy time and no occupancy keeps the previous share, as NVML's
does; before the first it is 0, so two trackers never count one idle board twice.

A counter lower than at the previous read (the process reopened the device, or its pid now
belongs to a new process) counts from 0: its value is what it gained, never a negative
share. A process first listed counts its whole counter (it opened the device since).

Version differences: amdsmi 6.1.2 and newer return a dict per process; before, the list is
of process handles (``amdsmi_process_handle_t``, the pid) and each needs
``amdsmi_get_gpu_process_info``. Where the list fails at the start
(``AMDSMI_STATUS_NOT_SUPPORTED``: VM guests, old drivers; ``AMDSMI_STATUS_NO_PERM``: newer
amdsmi when another user's process cannot be read) or this process is in a pid namespace of
its own (AMD SMI gives the host's pids, which match nothing of the tree), the whole device
is charged and the component's detail says so. The split is an attribution, not a
measurement: power is not exactly proportional to engine time or occupancy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ProcessEngineShare", "own_pid_namespace"]


@dataclass(frozen=True)
class _Process:
    pid: int
    gfx_ns: int
    cu_occupancy: int | None


def own_pid_namespace(proc_root: str | Path = "/proc") -> bool:
    """Whether this process is in a pid namespace below the host's (``NSpid`` in
    ``/proc/self/status`` names more than one pid). False where it cannot be read."""
    try:
        status = (Path(proc_root) / "self" / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return len(line.split()) > 2
    return False


def _number(value: Any) -> int | None:
    """An int field, None for amdsmi's "N/A" (or anything that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _entry(info: Mapping[str, Any]) -> _Process:
    usage = info.get("engine_usage")
    gfx = _number(usage.get("gfx")) if isinstance(usage, Mapping) else None
    return _Process(int(info["pid"]), gfx or 0, _number(info.get("cu_occupancy")))


class ProcessEngineShare:
    """The per-process engine counters of one AMD GPU, read between calls.

    Args:
        amdsmi: the amdsmi module (or the fake's).
        handle: the GPU's processor handle.
        own_namespace: this process is in a pid namespace of its own (see the module).

    Attributes:
        supported: whether AMD SMI gives per-process engine time this process can match.
        why_not: why it does not (empty when supported).
        share: the share the last :meth:`read` gave (0..1).
    """

    def __init__(self, amdsmi: Any, handle: Any, *, own_namespace: bool = False) -> None:
        self._amdsmi = amdsmi
        self._handle = handle
        self._last_ns: dict[int, int] = {}
        self.share = 0.0
        self.supported = True
        self.why_not = ""
        if own_namespace:
            self.supported = False
            self.why_not = "a pid namespace of its own: AMD SMI reports the host's pids"
            return
        if not hasattr(amdsmi, "amdsmi_get_gpu_process_list"):
            self.supported, self.why_not = False, "this amdsmi has no process list"
            return
        try:
            processes = self._processes()
        except amdsmi.AmdSmiException as error:
            info = getattr(error, "err_info", None) or str(error).strip()
            self.supported, self.why_not = False, f"{info} ({type(error).__name__})"
            return
        # Engine time from before the start belongs to no interval of the run.
        self._last_ns = {p.pid: p.gfx_ns for p in processes}

    def _processes(self) -> list[_Process]:
        amdsmi = self._amdsmi
        listed = amdsmi.amdsmi_get_gpu_process_list(self._handle)
        found: list[_Process] = []
        for item in listed:
            if isinstance(item, Mapping):  # amdsmi 6.1.2 and newer
                found.append(_entry(item))
                continue
            try:  # older: a process handle for amdsmi_get_gpu_process_info
                found.append(_entry(amdsmi.amdsmi_get_gpu_process_info(self._handle, item)))
            except amdsmi.AmdSmiException:
                continue  # it ended between the list and the question
        return found

    def read(self, pids: Collection[int]) -> float:
        """The tree's share of the GPU's busy time since the previous read (0..1)."""
        if not self.supported:
            return 1.0
        try:
            processes = self._processes()
        except self._amdsmi.AmdSmiException:
            return self.share  # a failed read keeps the last share
        ours = total = 0
        for process in processes:
            before = self._last_ns.get(process.pid, 0)
            # Lower than before: a new counter (reopened device, reused pid), from 0.
            gained = process.gfx_ns - before if process.gfx_ns >= before else process.gfx_ns
            total += gained
            if process.pid in pids:
                ours += gained
        self._last_ns = {p.pid: p.gfx_ns for p in processes}
        if total > 0:
            self.share = min(1.0, ours / total)
            return self.share
        occupied = [p for p in processes if p.cu_occupancy]
        cus = sum(p.cu_occupancy or 0 for p in occupied)
        if cus > 0:
            mine = sum(p.cu_occupancy or 0 for p in occupied if p.pid in pids)
            self.share = min(1.0, mine / cus)
        return self.share
