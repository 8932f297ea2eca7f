"""Process scope: the share of the machine's CPU time and memory used by a process tree.

The share of CPU *busy* time is used (not of capacity), so a process that is the only
busy one is attributed the whole CPU power, idle floor included; subtract an idle baseline
(``--baseline``) to report the energy the work added on top of an idle machine.
"""

from __future__ import annotations

import psutil

__all__ = ["ProcessTreeShare", "machine_busy_cpu_s"]

# idle/iowait are not busy; guest time is already counted inside user time on Linux.
_NOT_BUSY = frozenset({"idle", "iowait", "guest", "guest_nice"})


def machine_busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all CPUs, idle and iowait excluded)."""
    times = psutil.cpu_times()
    busy: float = sum(v for k, v in times._asdict().items() if k not in _NOT_BUSY)
    return busy


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
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._root: psutil.Process | None = None
        self._last_tree_s = 0.0
        self._last_machine_s = 0.0

    def _tree_cpu_s(self) -> float:
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

    def start(self) -> None:
        """Take the first reading."""
        try:
            self._root = psutil.Process(self.pid)
        except psutil.Error:
            self._root = None
        self._last_tree_s = self._tree_cpu_s()
        self._last_machine_s = machine_busy_cpu_s()

    def cpu_share(self) -> float:
        """The tree's share (0..1) of the machine's busy CPU time since the previous call."""
        tree_s = max(self._tree_cpu_s(), self._last_tree_s)
        machine_s = machine_busy_cpu_s()
        d_tree = tree_s - self._last_tree_s
        d_machine = machine_s - self._last_machine_s
        self._last_tree_s, self._last_machine_s = tree_s, machine_s
        if d_machine <= 0.0:
            return 0.0
        return min(1.0, max(0.0, d_tree / d_machine))

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
