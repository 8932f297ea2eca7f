"""What this job was given: CPUs, memory and GPUs, from SLURM, CUDA and cgroup v2.

A job on a shared node (a SLURM allocation, a container, a Kubernetes pod) must be charged
what it was given, not the node. :func:`read_allocation` reads, once:

* SLURM's environment, only inside a job (``SLURM_JOB_ID`` set): ``SLURM_CPUS_ON_NODE``
  (else ``SLURM_CPUS_PER_TASK``), ``SLURM_MEM_PER_NODE`` (else ``SLURM_MEM_PER_CPU`` x the
  CPUs; both in MB), ``SLURM_GPUS_ON_NODE`` and ``SLURM_STEP_GPUS`` / ``SLURM_JOB_GPUS``
  (GPU indices, ``0,2-3``);
* ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` and ``MIG-`` UUIDs; resolved against NVML's
  devices by ``_cuda_visible.py``);
* the process's cgroup v2 (``0::<path>`` of ``/proc/self/cgroup``) and its ancestors:
  ``cpu.max`` (a quota of ``quota/period`` CPUs) and ``memory.max`` (bytes);
* the CPU affinity (``sched_getaffinity``, already narrowed to the cgroup's cpuset).

The rules (docs/allocations.md):

* **CPUs charged = the smallest of** the affinity's CPU count, SLURM's CPUs and the cgroup
  quota: each is a limit the job cannot use more than. When they differ, a note says which
  won, e.g. ``SLURM 4, cgroup cpu.max 2.5: 2.5 charged``.
* **Memory limit = the smallest of** the cgroup's ``memory.max`` (the nearest ancestor's
  that is set) and SLURM's memory. The RAM estimate charges the memory the job uses: the
  limiting cgroup's ``memory.current``, or, with only SLURM's figure, the machine's memory
  in use capped at it; never the whole node's memory in use when a limit is known.
* **GPUs: ``CUDA_VISIBLE_DEVICES`` when set, else SLURM's GPU indices**; ``SLURM_GPUS_ON_NODE=0``
  with neither means no GPU. A count that disagrees with the list is noted.

Every figure says where it came from; the record is :class:`Allocation`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import psutil

__all__ = [
    "CGROUP_ROOT_ENV",
    "Allocation",
    "CudaDeviceEntry",
    "allocation_memory_reader",
    "parse_cpu_max",
    "parse_cuda_visible_devices",
    "parse_memory_max",
    "parse_slurm_id_list",
    "parse_slurm_memory_bytes",
    "read_allocation",
]

#: Environment variable naming the cgroup v2 mount to read (tests, unusual mounts).
CGROUP_ROOT_ENV: Final = "WATTWISE_CGROUP_ROOT"

# Where cgroup v2 is mounted: alone (unified) or beside the v1 controllers (hybrid).
_CGROUP_ROOTS: Final = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
_SELF_CGROUP: Final = Path("/proc/self/cgroup")
_BYTES_PER_UNIT: Final = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


# -- parsers (pure) -----------------------------------------------------------------------


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` (``"<quota> <period>"``, quota ``max`` = none) -> CPUs, or None.

    Raises:
        ValueError: not that format, or a period or quota that is not positive.
    """
    match = re.fullmatch(r"\s*(max|-?\d+)(?:\s+(-?\d+))?\s*", text)
    if match is None:
        raise ValueError(f"cpu.max {text!r} is not '<quota> <period>'")
    parts = [p for p in match.groups() if p is not None]
    period = int(parts[1]) if len(parts) == 2 else 100_000
    if period <= 0:
        raise ValueError(f"cpu.max {text!r} has a period that is not positive")
    if parts[0] == "max":
        return None
    quota = int(parts[0])
    if quota <= 0:
        raise ValueError(f"cpu.max {text!r} has a quota that is not positive")
    return quota / period


def parse_memory_max(text: str) -> int | None:
    """cgroup v2 ``memory.max`` (bytes, or ``max`` = no limit) -> bytes, or None.

    Raises:
        ValueError: neither ``max`` nor a whole number of bytes.
    """
    value = text.strip()
    if value == "max":
        return None
    if not value.isdigit():
        raise ValueError(f"memory.max {text!r} is neither 'max' nor a number of bytes")
    return int(value)


def parse_slurm_id_list(text: str) -> tuple[int, ...]:
    """A SLURM index list such as ``SLURM_JOB_GPUS`` (``"0,2-3"``) -> ``(0, 2, 3)``.

    Raises:
        ValueError: an entry that is neither ``N`` nor ``N-M`` with N <= M.
    """
    found: list[int] = []
    for raw in text.split(","):
        entry = raw.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", entry)
        if match is None:
            raise ValueError(f"{entry!r} in {text!r} is not an index or a range N-M")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ValueError(f"range {entry!r} in {text!r} runs backwards")
        found.extend(i for i in range(low, high + 1) if i not in found)
    return tuple(found)


def parse_slurm_memory_bytes(text: str) -> int:
    """``SLURM_MEM_PER_NODE`` / ``SLURM_MEM_PER_CPU`` (MB, or with a K/M/G/T suffix) -> bytes.

    Raises:
        ValueError: not a whole number with an optional unit.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a memory size in MB")
    return int(match.group(1)) * _BYTES_PER_UNIT[match.group(2).upper()]


@dataclass(frozen=True)
class CudaDeviceEntry:
    """One entry of ``CUDA_VISIBLE_DEVICES``, classified (not resolved against devices).

    Attributes:
        text: the entry as written, stripped.
        form: ``index``, ``gpu-uuid``, ``mig-uuid``, ``mig-legacy``
            (``MIG-GPU-<uuid>/<gi>/<ci>``) or ``invalid`` (CUDA stops the list there).
    """

    text: str
    form: str


_MIG_LEGACY = re.compile(r"MIG-GPU-[0-9a-f-]+/\d+/\d+", re.IGNORECASE)
_UUID_PREFIX = re.compile(r"(GPU|MIG)-[0-9a-f-]*", re.IGNORECASE)


def parse_cuda_visible_devices(spec: str | None) -> tuple[CudaDeviceEntry, ...] | None:
    """Classify ``CUDA_VISIBLE_DEVICES``: None when unset (every device), () when empty."""
    if spec is None:
        return None
    if not spec.strip():
        return ()
    entries = []
    for raw in spec.split(","):
        text = raw.strip()
        if re.fullmatch(r"\d+", text):
            form = "index"
        elif _MIG_LEGACY.fullmatch(text):
            form = "mig-legacy"
        elif _UUID_PREFIX.fullmatch(text) and len(text) > 4:
            form = "gpu-uuid" if text[:4].upper() == "GPU-" else "mig-uuid"
        else:
            form = "invalid"
        entries.append(CudaDeviceEntry(text, form))
    return tuple(entries)


# -- the record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """What this job was given, and where each figure came from.

    Attributes:
        cpus: CPUs charged: the smallest of the limits below (may be fractional).
        cpus_from: which limit that is.
        affinity_cpus: CPUs this process may run on (its affinity).
        slurm_cpus: SLURM's CPUs on this node, or None outside SLURM.
        cgroup_cpu_quota: the cgroup's ``cpu.max`` quota in CPUs (the smallest along the
            cgroup's ancestors), or None without a quota.
        memory_limit_bytes: the memory the job may use, or None without a limit. Units: B.
        memory_from: where the limit comes from (or ``no limit``).
        slurm_memory_bytes: SLURM's memory for the job on this node, or None. Units: B.
        cgroup_memory_max_bytes: the smallest ``memory.max`` along the cgroup's ancestors,
            or None. Units: B.
        memory_cgroup: the cgroup whose ``memory.max`` is the limit (its ``memory.current``
            is the memory the job uses), or None.
        cgroup: the process's cgroup v2 directory, or None where none was found.
        gpus: the ``CUDA_VISIBLE_DEVICES``-form list the GPUs are resolved from, or None
            for every GPU NVML lists.
        gpus_from: where that list comes from.
        slurm_gpu_count: ``SLURM_GPUS_ON_NODE``, or None.
        slurm_job_id: ``SLURM_JOB_ID``, or None outside SLURM.
        notes: conflicts between sources and unreadable inputs, each with how it was resolved.
    """

    cpus: float
    cpus_from: str
    affinity_cpus: int
    slurm_cpus: int | None
    cgroup_cpu_quota: float | None
    memory_limit_bytes: int | None
    memory_from: str
    slurm_memory_bytes: int | None
    cgroup_memory_max_bytes: int | None
    memory_cgroup: str | None
    cgroup: str | None
    gpus: str | None
    gpus_from: str
    slurm_gpu_count: int | None
    slurm_job_id: str | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields under their own names (tuples as lists), for ``--json``."""
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    def summary(self) -> list[str]:
        """One line per resource: what is charged and where it comes from."""
        memory = (
            f"memory: {self.memory_limit_bytes / 2**30:.3g} GB limit ({self.memory_from})"
            if self.memory_limit_bytes is not None
            else "memory: no limit found (the machine's memory in use is charged)"
        )
        gpus = "every GPU NVML lists" if self.gpus is None else repr(self.gpus)
        job = f"SLURM job {self.slurm_job_id}; " if self.slurm_job_id else ""
        return [
            f"{job}CPUs: {self.cpus:g} charged ({self.cpus_from})",
            memory,
            f"GPUs: {gpus} ({self.gpus_from})",
        ]


# -- reading ------------------------------------------------------------------------------


def _affinity() -> frozenset[int]:
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(psutil.cpu_count(logical=True) or 1))


def _own_cgroup(cgroup_file: Path, roots: Sequence[Path]) -> tuple[Path, Path] | None:
    """(the process's cgroup v2 directory, the mount it is under), or None."""
    try:
        lines = cgroup_file.read_text().splitlines()
    except OSError:
        return None
    rel = next((line[3:].strip() for line in lines if line.startswith("0::")), None)
    if rel is None:
        return None
    for root in roots:
        d = root / rel.lstrip("/")
        if d.is_dir() and (d / "cgroup.controllers").is_file():
            return d, root
        # A cgroup namespace (containers) shows "0::/" or a path from outside it: the
        # mount itself is then the container's cgroup.
        if (root / "cgroup.controllers").is_file() and (root / "cpu.max").is_file():
            return root, root
    return None


def _ancestors(d: Path, root: Path) -> list[Path]:
    """``d`` and its parents up to and including ``root``."""
    chain = [d]
    while chain[-1] != root and root in chain[-1].parents:
        chain.append(chain[-1].parent)
    return chain


def _read_limit(
    chain: Sequence[Path], name: str, parse: Callable[[str], float | int | None], notes: list[str]
) -> tuple[float | int | None, Path | None]:
    """The smallest limit in file ``name`` along ``chain``, and the cgroup holding it."""
    best: float | int | None = None
    where: Path | None = None
    for d in chain:
        try:
            value = parse((d / name).read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            notes.append(f"{d / name} unreadable, ignored: {exc}")
            continue
        if value is not None and (best is None or value < best):
            best, where = value, d
    return best, where


def _env_int(env: Mapping[str, str], name: str, notes: list[str]) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    match = re.match(r"\d+", raw)  # SLURM_CPUS_PER_TASK may read "4(x2)" on old versions
    if match is None:
        notes.append(f"{name}={raw!r} is not a count, ignored")
        return None
    return int(match.group(0))


def _slurm_memory(env: Mapping[str, str], cpus: int | None, notes: list[str]) -> int | None:
    for name, per_cpu in (("SLURM_MEM_PER_NODE", False), ("SLURM_MEM_PER_CPU", True)):
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            value = parse_slurm_memory_bytes(raw)
        except ValueError as exc:
            notes.append(f"{name}: {exc}, ignored")
            continue
        if not per_cpu:
            return value
        if cpus is not None:
            return value * cpus
    return None


def _choose_cpus(
    affinity: int, slurm: int | None, quota: float | None, notes: list[str]
) -> tuple[float, str]:
    limits = [(float(affinity), f"CPU affinity, {affinity} CPUs")]
    if slurm is not None:
        limits.append((float(slurm), f"SLURM, {slurm} CPUs"))
    if quota is not None:
        limits.append((quota, f"cgroup cpu.max, {quota:g} CPUs"))
    cpus, origin = min(limits, key=lambda pair: pair[0])
    if len({value for value, _ in limits}) > 1:
        said = ", ".join(origin for _, origin in limits)
        notes.append(f"CPU limits differ ({said}): {cpus:g} charged, the smallest")
    return cpus, origin


def _choose_memory(
    cgroup_max: int | None, where: Path | None, slurm: int | None, notes: list[str]
) -> tuple[int | None, str, Path | None]:
    if cgroup_max is not None and (slurm is None or cgroup_max <= slurm):
        if slurm is not None and slurm != cgroup_max:
            notes.append(
                f"memory limits differ (SLURM {slurm} B, cgroup memory.max {cgroup_max} B): "
                "the cgroup's, the smaller, is used"
            )
        return cgroup_max, f"cgroup memory.max of {where}", where
    if slurm is not None:
        if cgroup_max is not None:
            notes.append(
                f"memory limits differ (SLURM {slurm} B, cgroup memory.max {cgroup_max} B): "
                "SLURM's, the smaller, is used"
            )
        return slurm, "SLURM_MEM_PER_NODE / SLURM_MEM_PER_CPU", None
    return None, "no limit", None


def _choose_gpus(
    env: Mapping[str, str], in_slurm: bool, count: int | None, notes: list[str]
) -> tuple[str | None, str]:
    cuda = env.get("CUDA_VISIBLE_DEVICES")
    named: int | None = None
    if cuda is not None:
        spec, origin = cuda, "CUDA_VISIBLE_DEVICES"
        entries = parse_cuda_visible_devices(cuda) or ()
        named = len(entries)
    else:
        spec, origin = None, "no CUDA_VISIBLE_DEVICES or SLURM GPU list"
        for name in ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS") if in_slurm else ():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                ids = parse_slurm_id_list(raw)
            except ValueError as exc:
                notes.append(f"{name}: {exc}, ignored")
                continue
            spec, origin, named = ",".join(map(str, ids)), f"{name} (NVML indices)", len(ids)
            break
        if spec is None and count == 0:
            spec, origin, named = "", "SLURM_GPUS_ON_NODE=0", 0
    if count is not None and named is not None and named != count:
        notes.append(f"SLURM_GPUS_ON_NODE={count} but {origin} names {named}: the list is used")
    elif count is not None and named is None:
        notes.append(
            f"SLURM gave {count} GPU(s) but nothing names which: every GPU NVML lists is "
            "charged; set CUDA_VISIBLE_DEVICES to the job's GPUs"
        )
    return spec, origin


def read_allocation(
    *,
    environ: Mapping[str, str] | None = None,
    cgroup_roots: Sequence[Path] | None = None,
    cgroup_file: Path = _SELF_CGROUP,
    affinity: Collection[int] | None = None,
) -> Allocation:
    """Read what this job was given; never raises for a missing or unreadable source.

    Args:
        environ: the environment (SLURM, CUDA, ``WATTWISE_CGROUP_ROOT``); default ``os.environ``.
        cgroup_roots: where cgroup v2 may be mounted; default ``WATTWISE_CGROUP_ROOT``, else
            ``/sys/fs/cgroup`` and ``/sys/fs/cgroup/unified``.
        cgroup_file: the file naming the process's cgroup (``/proc/self/cgroup``).
        affinity: the CPUs this process may run on; default its affinity.
    """
    env = os.environ if environ is None else environ
    notes: list[str] = []
    if cgroup_roots is None:
        given = env.get(CGROUP_ROOT_ENV, "").strip()
        cgroup_roots = (Path(given),) if given else _CGROUP_ROOTS
    cpu_ids = _affinity() if affinity is None else frozenset(affinity)
    job = env.get("SLURM_JOB_ID", "").strip() or None
    slurm_env: Mapping[str, str] = env if job is not None else {}
    slurm_cpus = _env_int(slurm_env, "SLURM_CPUS_ON_NODE", notes)
    if slurm_cpus is None:
        slurm_cpus = _env_int(slurm_env, "SLURM_CPUS_PER_TASK", notes)
    found = _own_cgroup(cgroup_file, cgroup_roots)
    quota: float | None = None
    memory_max: int | None = None
    memory_where: Path | None = None
    if found is not None:
        chain = _ancestors(*found)
        quota_value, _ = _read_limit(chain, "cpu.max", parse_cpu_max, notes)
        quota = None if quota_value is None else float(quota_value)
        memory_value, memory_where = _read_limit(chain, "memory.max", parse_memory_max, notes)
        memory_max = None if memory_value is None else int(memory_value)
    cpus, cpus_from = _choose_cpus(len(cpu_ids) or 1, slurm_cpus, quota, notes)
    slurm_memory = _slurm_memory(slurm_env, slurm_cpus, notes)
    limit, memory_from, limiting = _choose_memory(memory_max, memory_where, slurm_memory, notes)
    gpu_count = _env_int(slurm_env, "SLURM_GPUS_ON_NODE", notes)
    gpus, gpus_from = _choose_gpus(env, job is not None, gpu_count, notes)
    return Allocation(
        cpus=cpus,
        cpus_from=cpus_from,
        affinity_cpus=len(cpu_ids) or 1,
        slurm_cpus=slurm_cpus,
        cgroup_cpu_quota=quota,
        memory_limit_bytes=limit,
        memory_from=memory_from,
        slurm_memory_bytes=slurm_memory,
        cgroup_memory_max_bytes=memory_max,
        memory_cgroup=None if limiting is None else str(limiting),
        cgroup=None if found is None else str(found[0]),
        gpus=gpus,
        gpus_from=gpus_from,
        slurm_gpu_count=gpu_count,
        slurm_job_id=job,
        notes=tuple(notes),
    )


def memory_current_file(allocation: Allocation) -> Path | None:
    """The limiting cgroup's ``memory.current`` when it can be read now, else None.

    A cgroup v2 directory normally has it beside ``memory.max``; one that does not (a
    permission, an odd container runtime) falls back to the machine's memory in use capped
    at the limit, as a limit from SLURM alone does.
    """
    if allocation.memory_cgroup is None:
        return None
    current = Path(allocation.memory_cgroup) / "memory.current"
    try:
        int(current.read_text().strip())
    except (OSError, ValueError):
        return None
    return current


def allocation_memory_reader(
    allocation: Allocation, machine_used_bytes: Callable[[], int]
) -> Callable[[], int]:
    """The memory in use to charge the job (bytes), under its allocation's limit.

    The limiting cgroup's ``memory.current`` (capped at the limit) where a cgroup sets the
    limit and the file can be read (:func:`memory_current_file`); the machine's memory in
    use capped at the limit otherwise (only SLURM gives one, or the cgroup file cannot be
    read, at the start or later); the machine's memory in use where no limit is known.
    """
    limit = allocation.memory_limit_bytes
    if limit is None:
        return machine_used_bytes

    def capped() -> int:
        return min(machine_used_bytes(), limit)

    current = memory_current_file(allocation)
    if current is None:
        return capped

    def cgroup_used() -> int:
        try:
            return min(int(current.read_text().strip()), limit)
        except (OSError, ValueError):  # gone mid-run: the machine's, capped, as at the start
            return capped()

    return cgroup_used
