"""What a run was given, and the size of the machine it ran on, as recorded at its start.

A stored run is read long after it ran, often on another machine: whatever depends on its
share of the machine (the embodied emissions, :mod:`wattwise.carbon._embodied`) must not
read today's machine, nor assume the whole of it. The tracker records a
:class:`RunAllocation` when the run starts (from
:func:`wattwise.meters.read_allocation`: affinity, SLURM, cgroup v2, the visible GPUs) and
the store keeps it with the run (schema version 3, docs/store.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from wattwise.meters._allocation import Allocation

__all__ = ["RunAllocation"]


@dataclass(frozen=True)
class RunAllocation:
    """What a run was given, and its machine's size, when it started.

    Attributes:
        cpus: logical CPUs given to the run (the smallest of its affinity, SLURM's CPUs and
            the cgroup's ``cpu.max`` quota; may be fractional).
        cpus_from: which of those limits it is (:attr:`Allocation.cpus_from`).
        memory_limit_bytes: the memory the run could use (the cgroup's ``memory.max`` or
            SLURM's memory, the smaller), or None without a limit. Units: B.
        memory_from: where that limit comes from (or ``no limit``).
        gpus: the ``CUDA_VISIBLE_DEVICES``-form list of the GPUs it was given, or None for
            every GPU of the machine.
        gpus_from: where that list comes from.
        machine_logical_cpus: logical CPUs of the machine.
        machine_memory_bytes: the machine's installed memory, or None where unreadable.
            Units: B.
    """

    cpus: float
    cpus_from: str
    memory_limit_bytes: int | None
    memory_from: str
    gpus: str | None
    gpus_from: str
    machine_logical_cpus: int
    machine_memory_bytes: int | None

    #: What the CLI and the report say for a run without a record (None).
    NOT_RECORDED: ClassVar[str] = "not recorded (a run stored before schema version 3)"

    @classmethod
    def of(
        cls,
        allocation: Allocation,
        *,
        machine_logical_cpus: int,
        machine_memory_bytes: int | None,
    ) -> RunAllocation:
        """The record of ``allocation`` on a machine of this size."""
        return cls(
            cpus=allocation.cpus,
            cpus_from=allocation.cpus_from,
            memory_limit_bytes=allocation.memory_limit_bytes,
            memory_from=allocation.memory_from,
            gpus=allocation.gpus,
            gpus_from=allocation.gpus_from,
            machine_logical_cpus=machine_logical_cpus,
            machine_memory_bytes=machine_memory_bytes,
        )

    def describe(self) -> str:
        """One line for people: CPUs, memory limit and GPUs, each with where it comes from,
        e.g. ``2 of 8 logical CPUs (SLURM, 2 CPUs), memory limit 4 GiB of 31.3 GiB (cgroup
        memory.max of /job), GPUs 0,1 (CUDA_VISIBLE_DEVICES)``. The sources come from the
        environment: a caller printing with Rich escapes it (or prints with markup off)."""
        cpus = f"{self.cpus:g} of {self.machine_logical_cpus} logical CPUs ({self.cpus_from})"
        total = self.machine_memory_bytes
        if self.memory_limit_bytes is not None:
            of = f" of {_gib(total)}" if total is not None else ""
            memory = f"memory limit {_gib(self.memory_limit_bytes)}{of} ({self.memory_from})"
        else:
            memory = "no memory limit" + (f" (the machine has {_gib(total)})" if total else "")
        if self.gpus is None:
            gpus = f"every GPU of the machine ({self.gpus_from})"
        elif self.gpus == "":
            gpus = f"no GPUs ({self.gpus_from})"
        else:
            gpus = f"GPUs {self.gpus} ({self.gpus_from})"
        return f"{cpus}, {memory}, {gpus}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``allocation`` object of a run's JSON, and its stored form)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunAllocation:
        """The record from :meth:`to_dict`'s dict; keys it does not know are ignored (a
        newer wattwise may store more).

        Raises:
            KeyError: a field is missing.
            ValueError: a figure is not a number.
        """
        memory = data["memory_limit_bytes"]
        machine_memory = data["machine_memory_bytes"]
        gpus = data["gpus"]
        return cls(
            cpus=float(data["cpus"]),
            cpus_from=str(data["cpus_from"]),
            memory_limit_bytes=None if memory is None else int(memory),
            memory_from=str(data["memory_from"]),
            gpus=None if gpus is None else str(gpus),
            gpus_from=str(data["gpus_from"]),
            machine_logical_cpus=int(data["machine_logical_cpus"]),
            machine_memory_bytes=None if machine_memory is None else int(machine_memory),
        )


def _gib(size_bytes: int) -> str:
    """A memory size in GiB (2**30 B), three significant digits."""
    return f"{size_bytes / 2**30:.3g} GiB"
