"""Process scope: the share of the machine's CPU time and memory used by a process tree.

The share of CPU *busy* time is used (not of capacity), so a process that is the only
busy one is attributed the whole CPU power, idle floor included; subtract an idle baseline
(``--baseline``) to report the energy the work added on top of an idle machine.

Busy time is counted only on the CPUs this process may run on (its affinity, which the
kernel already narrows to the cgroup cpuset), the same CPUs whose power the estimate meter
gives, and by the estimate meter's rule (:func:`~wattwise.meters._estimate.split_cpu_time_s`:
steal is not busy). The kernel counts CPU time in clock ticks (10 ms with ``USER_HZ=100``):
an interval in which no tick fell keeps the previous interval's share and its CPU time is
carried into the next interval, so sampling faster than the tick loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence

import psutil

from wattwise.meters._estimate import split_cpu_time_s

__all__ = [
    "ProcessTreeShare",
    "machine_busy_cpu_s",
    "per_cpu_busy_s",
    "psutil_per_cpu_times",
    "usable_cpu_ids",
]


# The kernel's CPU-time unit (USER_HZ, 100 per second almost everywhere), and how many of
# them the tree's counter may run ahead of the CPUs' by reading them a moment apart.
_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
_CARRY_TICKS = 2


def psutil_per_cpu_times() -> list[Mapping[str, float]]:
    """Each CPU's cumulative kernel counters (user, system, idle, steal...), by CPU number."""
    return [t._asdict() for t in psutil.cpu_times(percpu=True)]


def per_cpu_busy_s(times: Sequence[Mapping[str, float]] | None = None) -> list[float]:
    """Busy CPU seconds of each CPU, by CPU number (idle, iowait, steal excluded).

    Args:
        times: each CPU's counters; default: the kernel's since boot.
    """
    per_cpu = psutil_per_cpu_times() if times is None else times
    return [split_cpu_time_s(t).busy_s for t in per_cpu]


def machine_busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs, idle, iowait, steal excluded)."""
    return sum(per_cpu_busy_s())


def usable_cpu_ids() -> frozenset[int]:
    """The CPUs this process may run on: its affinity (inside the cgroup cpuset), else all."""
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(psutil.cpu_count(logical=True) or 1))


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


class ProcessTreeShare:
    """Measures a process tree's share of CPU busy time and of memory in use between calls.

    Args:
        pid: the root of the tree (the tracked process or the command ``wattwise run``
            started).
        cpus: CPU numbers whose busy time is shared out; default: those this process may
            run on (:func:`usable_cpu_ids`, read at :meth:`start`), which are the CPUs the
            estimate meter's power covers. Pass every CPU where the power covers whole
            packages (RAPL).
        cpu_times: returns each CPU's cumulative counters by CPU number, as mappings
            like ``psutil.cpu_times(percpu=True)[i]._asdict()``; default: the kernel's
            (tests pass their own).
        tree_cpu_s: returns the tree's cumulative CPU seconds; default: the kernel's
            counters of the tree's processes (tests pass their own).
    """

    def __init__(
        self,
        pid: int,
        *,
        cpus: Collection[int] | None = None,
        cpu_times: Callable[[], Sequence[Mapping[str, float]]] | None = None,
        tree_cpu_s: Callable[[], float] | None = None,
    ) -> None:
        self.pid = pid
        self._given_cpus = None if cpus is None else frozenset(cpus)
        self._cpus: frozenset[int] = frozenset()
        self._cpu_times = cpu_times or psutil_per_cpu_times
        self._tree_source = tree_cpu_s
        self._root: psutil.Process | None = None
        self._last_tree_s = 0.0
        self._last_busy: dict[int, float] = {}
        # CPU time not yet shared out: the tree's and the chosen CPUs' (see cpu_share).
        self._pending_tree_s = 0.0
        self._pending_busy_s = 0.0
        self._last_share = 0.0

    def _tree_cpu_s(self) -> float:
        if self._tree_source is not None:
            return self._tree_source()
        if self._root is None:
            return self._last_tree_s
        total = 0.0
        for proc in _tree(self._root):
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            # children_* hold the time of children already reaped, so a child that exits
            # between two calls moves from "living descendant" to its parent's children_*.
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def _busy_by_cpu(self) -> dict[int, float]:
        per_cpu = per_cpu_busy_s(self._cpu_times())
        chosen = {i: per_cpu[i] for i in self._cpus if 0 <= i < len(per_cpu)}
        # Numbering mismatch (offline CPUs): share out every CPU rather than none.
        return chosen or dict(enumerate(per_cpu))

    @property
    def cpus(self) -> frozenset[int]:
        """The CPU numbers whose busy time is shared out (set by :meth:`start`)."""
        return self._cpus

    def start(self) -> None:
        """Take the first reading."""
        if self._tree_source is None:
            try:
                self._root = psutil.Process(self.pid)
            except psutil.Error:
                self._root = None
        self._cpus = self._given_cpus if self._given_cpus is not None else usable_cpu_ids()
        self._last_tree_s = self._tree_cpu_s()
        self._last_busy = self._busy_by_cpu()
        self._pending_tree_s = self._pending_busy_s = 0.0
        self._last_share = 0.0

    def cpu_share(self) -> float:
        """The tree's share (0..1) of the chosen CPUs' busy time since the previous call.

        CPU time is counted in clock ticks, and the tree's and the CPUs' counters are read
        a moment apart, so a short interval may see the tree's tick but not the CPUs' (or
        none at all). Time not yet shared out is carried into the next interval: with no
        busy tick on the CPUs the previous share is kept, and tree time beyond the CPUs'
        busy time waits for theirs, so over any run of intervals the tree is attributed
        its CPU time, not less.
        """
        tree_s = max(self._tree_cpu_s(), self._last_tree_s)
        busy = self._busy_by_cpu()
        d_busy = sum(max(0.0, v - self._last_busy.get(i, v)) for i, v in busy.items())
        self._pending_tree_s += tree_s - self._last_tree_s
        self._pending_busy_s += d_busy
        self._last_tree_s, self._last_busy = tree_s, busy
        if self._pending_busy_s <= 0.0:
            return self._last_share
        if self._pending_tree_s >= self._pending_busy_s:
            share = 1.0
            # Misread ticks are a tick or two per CPU; more is time on other CPUs.
            limit = _CARRY_TICKS * _TICK_S * max(1, len(busy))
            self._pending_tree_s = min(self._pending_tree_s - self._pending_busy_s, limit)
        else:
            share = self._pending_tree_s / self._pending_busy_s
            self._pending_tree_s = 0.0
        self._pending_busy_s = 0.0
        self._last_share = share
        return share

    def memory_share(self) -> float:
        """The tree's resident memory over the machine's memory in use (0..1), now."""
        if self._root is None:
            return 0.0
        rss = 0
        for proc in _tree(self._root):
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        vm = psutil.virtual_memory()
        used = vm.total - vm.available
        if used <= 0:
            return 0.0
        return min(1.0, rss / used)
