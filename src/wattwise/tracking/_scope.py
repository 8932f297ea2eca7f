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

The tree's CPU time is followed process by process (:class:`_TreeClock`): every process
ever seen in the tree is followed while it lives, even after its parent exits and it is
reparented out of the tree; a process that exits keeps the CPU time it was last seen with;
and a parent's ``children_user``/``children_system`` (the final times of the children it
waited for) count only beyond what its exited children were already credited, so a child
is counted once. What no reading saw (a process born and orphaned between two readings)
is not counted. The tree's time never goes backwards, and a drop (time that left the
tree uncounted) does not swallow the tree's next seconds.

Where the tree is alone in a cgroup v2 (a SLURM task, a container, ``systemd-run``: every
process in the cgroup and its sub-cgroups is the tree's when first read), the cgroup's
``cpu.stat`` ``usage_usec`` is the tree's CPU time instead, which also counts what no
reading saw. If another process joins the cgroup, the tree is followed process by
process from then on, continuing from the cgroup's figure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from wattwise.meters._allocation import allocation_memory_reader, read_allocation
from wattwise.meters._estimate import psutil_memory_used_bytes, split_cpu_time_s

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

# Where cgroup v2 is mounted: alone (unified) or beside the v1 controllers (hybrid).
_CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))


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


def _cgroup_dir(pid: int, roots: Sequence[Path]) -> Path | None:
    """The cgroup v2 directory holding ``pid`` under one of ``roots``, else None."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    rel = next((line[3:].strip() for line in lines if line.startswith("0::")), None)
    if rel is None:
        return None
    for root in roots:
        d = root / rel.lstrip("/")
        if (d / "cpu.stat").is_file() and (d / "cgroup.procs").is_file():
            return d
    return None


def _cgroup_pids(d: Path) -> set[int] | None:
    """Every process in the cgroup ``d`` and its sub-cgroups; None where unreadable."""
    pids: set[int] = set()
    try:
        for dirpath, _, files in os.walk(d):
            if "cgroup.procs" in files:
                pids.update(int(p) for p in (Path(dirpath) / "cgroup.procs").read_text().split())
    except (OSError, ValueError):
        return None
    return pids


def _cgroup_usage_s(d: Path) -> float | None:
    """The cgroup's cumulative CPU seconds (``cpu.stat`` ``usage_usec``); None if unread."""
    try:
        text = (d / "cpu.stat").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            try:
                return int(value) / 1e6
            except ValueError:
                return None
    return None


@dataclass
class _Seen:
    """What the last reading saw of one process of the tree (CPU seconds)."""

    proc: psutil.Process
    create_time: float
    ppid: int | None
    own_s: float  # user + system
    reaped_s: float  # children_user + children_system: children it waited for
    reaped_at_first_s: float  # reaped_s when first seen
    exited_children_s: float = 0.0  # what its children that exited were last seen with

    def total_s(self) -> float:
        """Own time, and its waited-for children's: their final times from the kernel or,
        where larger (they were not waited for), the times they were last seen with."""
        reaped = max(self.reaped_s, self.reaped_at_first_s + self.exited_children_s)
        return self.own_s + reaped


class _TreeClock:
    """Cumulative CPU seconds of a process tree, exited and orphaned descendants included.

    Each reading finds the root's descendants and those of every process still alive
    that an earlier reading saw, so a process whose parent exited is still followed.
    Processes are told apart by pid and creation time, so a reused pid is not taken for
    a process seen before.

    Where the root's cgroup v2 (under one of ``cgroup_roots``) holds only the tree's
    processes at the first reading, its CPU usage is the tree's time for as long as it
    holds only theirs.
    """

    def __init__(self, root: psutil.Process, *, cgroup_roots: Sequence[Path] = ()) -> None:
        self._root = root
        self._seen: dict[int, _Seen] = {}
        self._exited_s = 0.0  # exited processes whose parent is not followed
        self._cgroup_roots = tuple(cgroup_roots)
        self._cgroup: Path | None = None
        self._cgroup_checked = False
        # The cgroup's usage minus the processes' time at the last cgroup reading, so
        # per-process readings continue from the cgroup's figure.
        self._offset_s = 0.0

    @property
    def cgroup(self) -> Path | None:
        """The cgroup whose CPU usage is the tree's time, if any."""
        return self._cgroup

    def processes(self) -> list[psutil.Process]:
        """The processes the last reading followed."""
        return [s.proc for s in self._seen.values()]

    def read(self) -> float:
        processes_s = self._read_processes()
        if not self._cgroup_checked:
            self._cgroup_checked = True
            d = _cgroup_dir(self._root.pid, self._cgroup_roots) if self._cgroup_roots else None
            self._cgroup = d if d is not None and self._alone_in(d) else None
        if self._cgroup is not None:
            usage = _cgroup_usage_s(self._cgroup) if self._alone_in(self._cgroup) else None
            if usage is not None:
                self._offset_s = usage - processes_s
                return usage
            self._cgroup = None  # another process joined it: process by process from now
        return processes_s + self._offset_s

    def _alone_in(self, d: Path) -> bool:
        pids = _cgroup_pids(d)
        return bool(pids) and all(self._is_ours(pid) for pid in pids or ())

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is the tree's: seen, or born since with a seen ancestor."""
        for _ in range(64):
            if pid in self._seen:
                return True
            if pid <= 1:
                return False
            try:
                pid = psutil.Process(pid).ppid()
            except psutil.NoSuchProcess:
                return True  # exited already, from a cgroup that held only the tree's
            except psutil.Error:
                return False
        return False

    def _read_processes(self) -> float:
        # Alive now: the root's descendants, and those of each process seen before that
        # no longer descends from it (one scan of the machine each; usually none).
        running: dict[int, psutil.Process] = {}
        for top in [self._root, *(s.proc for s in self._seen.values())]:
            if top.pid in running:
                continue
            try:
                if not top.is_running():
                    continue
                found = [top, *top.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in found:
                running.setdefault(proc.pid, proc)
        gone = [pid for pid, s in self._seen.items() if not self._update(s, running)]
        for pid in gone:
            exited = self._seen.pop(pid)
            parent = self._seen.get(exited.ppid) if exited.ppid is not None else None
            if parent is not None and parent.create_time <= exited.create_time:
                parent.exited_children_s += exited.total_s()
            else:
                self._exited_s += exited.total_s()
        for pid, proc in running.items():
            if pid not in self._seen:
                self._first_sight(proc)
        return self._exited_s + sum(s.total_s() for s in self._seen.values())

    @staticmethod
    def _is(proc: psutil.Process, running: Mapping[int, psutil.Process]) -> bool:
        now = running.get(proc.pid)
        if now is None:
            return False
        try:
            return now.create_time() == proc.create_time()
        except psutil.Error:
            return False

    def _first_sight(self, proc: psutil.Process) -> bool:
        try:
            with proc.oneshot():
                t, ppid, created = proc.cpu_times(), proc.ppid(), proc.create_time()
        except psutil.Error:
            return False
        reaped = t.children_user + t.children_system
        self._seen[proc.pid] = _Seen(proc, created, ppid, t.user + t.system, reaped, reaped)
        return True

    def _update(self, seen: _Seen, running: Mapping[int, psutil.Process]) -> bool:
        """Read a followed process again; False where it has exited."""
        if not self._is(seen.proc, running):
            return False
        try:
            with seen.proc.oneshot():
                t, ppid = seen.proc.cpu_times(), seen.proc.ppid()
        except psutil.Error:
            return False
        seen.own_s = max(seen.own_s, t.user + t.system)
        seen.reaped_s = max(seen.reaped_s, t.children_user + t.children_system)
        seen.ppid = ppid
        return True


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
            counters of the tree's processes, or its cgroup's (tests pass their own).
        cgroup_roots: where cgroup v2 may be mounted, for the tree's cgroup usage;
            default: ``/sys/fs/cgroup`` and ``/sys/fs/cgroup/unified``; ``()`` reads
            the tree's processes only (tests pass a directory of their own).
        memory_used_bytes: returns the memory in use the RAM estimate charges; default:
            the job's under its allocation's limit (cgroup, SLURM), else the machine's.
    """

    def __init__(
        self,
        pid: int,
        *,
        cpus: Collection[int] | None = None,
        cpu_times: Callable[[], Sequence[Mapping[str, float]]] | None = None,
        tree_cpu_s: Callable[[], float] | None = None,
        cgroup_roots: Sequence[Path] | None = None,
        memory_used_bytes: Callable[[], int] | None = None,
    ) -> None:
        self.pid = pid
        self._memory_source = memory_used_bytes
        self._memory_used: Callable[[], int] = psutil_memory_used_bytes
        self._given_cpus = None if cpus is None else frozenset(cpus)
        self._cpus: frozenset[int] = frozenset()
        self._cpu_times = cpu_times or psutil_per_cpu_times
        self._tree_source = tree_cpu_s
        self._cgroup_roots = _CGROUP_ROOTS if cgroup_roots is None else tuple(cgroup_roots)
        self._root: psutil.Process | None = None
        self._clock: _TreeClock | None = None
        self._last_tree_s = 0.0
        # Added to the tree's readings so that they never go backwards (see cpu_share).
        self._tree_offset_s = 0.0
        self._last_busy: dict[int, float] = {}
        # CPU time not yet shared out: the tree's and the chosen CPUs' (see cpu_share).
        self._pending_tree_s = 0.0
        self._pending_busy_s = 0.0
        self._last_share = 0.0

    def _tree_cpu_s(self) -> float:
        if self._tree_source is not None:
            return self._tree_source()
        if self._clock is None:
            return self._last_tree_s
        return self._clock.read()

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
            self._clock = (
                None
                if self._root is None
                else _TreeClock(self._root, cgroup_roots=self._cgroup_roots)
            )
        self._cpus = self._given_cpus if self._given_cpus is not None else usable_cpu_ids()
        self._memory_used = self._memory_source or allocation_memory_reader(
            read_allocation(), psutil_memory_used_bytes
        )
        self._tree_offset_s = 0.0
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

        A reading below the previous one (CPU time that left the tree uncounted) raises
        an offset instead of being clamped, so the tree's later seconds still count.
        """
        reading = self._tree_cpu_s()
        if reading + self._tree_offset_s < self._last_tree_s:
            self._tree_offset_s = self._last_tree_s - reading
        tree_s = reading + self._tree_offset_s
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

    def pids(self) -> frozenset[int]:
        """The processes of the tree the last reading followed (at least its root)."""
        procs = self._clock.processes() if self._clock is not None else []
        return frozenset({self.pid, *(p.pid for p in procs)})

    @property
    def cgroup(self) -> Path | None:
        """The cgroup v2 whose CPU usage is the tree's time, if any (see the module)."""
        return self._clock.cgroup if self._clock is not None else None

    @property
    def tree_cpu_s(self) -> float:
        """The tree's cumulative CPU seconds at the last reading (never decreasing)."""
        return self._last_tree_s

    def memory_share(self) -> float:
        """The tree's resident memory over the memory in use the RAM estimate charges
        (the job's under a memory limit, else the machine's), 0..1, now."""
        if self._root is None:
            return 0.0
        procs = self._clock.processes() if self._clock is not None else []
        rss = 0
        for proc in procs or _tree(self._root):
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        try:
            used = self._memory_used()
        except (OSError, ValueError):
            used = psutil_memory_used_bytes()
        if used <= 0:
            return 0.0
        return min(1.0, rss / used)
