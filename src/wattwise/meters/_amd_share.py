"""A process tree's share of one AMD GPU, from AMD SMI's per-process engine time.

The AMD counterpart of ``_gpu_share.py`` (NVML), with the same contract for process scope
(issue 19 §2): the board's energy times the tree's share of the GPU's busy time in the
interval. ``amdsmi_get_gpu_process_list`` lists, per GPU, each process with its
``engine_usage["gfx"]``: the ns its DRM clients kept the gfx engine busy since they opened
the device (the kernel's ``drm-engine-gfx`` in ``/proc/<pid>/fdinfo``, a cumulative count).
Over the counters' increase since the previous read::

    share = sum(gfx ns gained by the tree's pids) / sum(gfx ns gained by every pid)

ROCm's compute work (HIP, PyTorch) runs on KFD user-mode queues that the DRM scheduler does
not see, so its gfx time stays 0 (ROCm/amdsmi issue 130: a training process at "GFX: 0 ns"
on a 97 % busy MI300X; amdgpu_top issue 49). So where any listed process occupies compute
units at the read (``cu_occupancy``, KFD's count of the CUs its waves occupy; amdsmi 7.0's
list has it, "N/A" where the kernel does not give it), the share is the tree's part of the
occupied CUs, a snapshot at the read; otherwise it is the gfx time above. Neither (an idle
GPU) keeps the previous share, as NVML's does; before the first it is 0, so two trackers
never count one idle board twice.

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

    @property
    def basis(self) -> str:
        """How process scope attributes this GPU, for the component's detail."""
        if self.supported:
            return (
                "the process tree's share of the compute units its processes occupy, else "
                "of their gfx engine time (AMD SMI's per-process list)"
            )
        return f"the whole device (AMD SMI gives no per-process engine time here: {self.why_not})"

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
        gained = self._gained(processes)
        self._last_ns = {p.pid: p.gfx_ns for p in processes}
        # KFD's occupancy first: it is what sees ROCm compute, which gfx time does not.
        for weights in ({p.pid: p.cu_occupancy or 0 for p in processes}, gained):
            total = sum(weights.values())
            if total > 0:
                ours = sum(w for pid, w in weights.items() if pid in pids)
                self.share = min(1.0, ours / total)
                break
        return self.share

    def _gained(self, processes: list[_Process]) -> dict[int, int]:
        """Each process's gfx ns since the previous read. A counter lower than before is a
        new one (the device reopened, the pid reused): what it shows is what it gained."""
        gained: dict[int, int] = {}
        for process in processes:
            before = self._last_ns.get(process.pid, 0)
            now = process.gfx_ns
            gained[process.pid] = gained.get(process.pid, 0) + (
                now - before if now >= before else now
            )
        return gained
