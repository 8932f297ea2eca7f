"""Frozen records of a run: what the tracker measured and the store keeps. Units are in the
field names (J, W, s).

They sit below tracking, store, carbon and report, which all read or write them (the
layers in docs/architecture.md); their public names are ``wattwise.tracking``'s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wattwise._records.allocation import RunAllocation
from wattwise._records.members import MemberRole
from wattwise.meters._base import ComponentKind, Method, Source

__all__ = [
    "CarbonFigures",
    "ComponentEnergy",
    "Gap",
    "HostPart",
    "MemberResult",
    "RunResult",
    "RunStatus",
    "Sample",
    "Scope",
    "WindowResult",
]


class Scope(enum.StrEnum):
    """What a run's energy covers.

    ``machine``: everything the meters see. ``process``: the CPU (and RAM) energy scaled by
    the tracked process tree's share of the machine's CPU time (of memory in use), and the
    GPUs the process may use.
    """

    MACHINE = "machine"
    PROCESS = "process"


class RunStatus(enum.StrEnum):
    """Lifecycle of a run. ``interrupted``: its process died before finishing it."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Sample:
    """The energy of one component over one sampling interval (a point of the timeline).

    Attributes:
        component: component name.
        t_start_s: interval start, s since the run started.
        t_end_s: interval end, s since the run started.
        energy_j: energy in the interval, in J, after the scope share; None for a gap.
        note: why a gap happened, or None.
    """

    component: str
    t_start_s: float
    t_end_s: float
    energy_j: float | None
    note: str | None = None

    @property
    def power_w(self) -> float | None:
        """Mean power over the interval, in W (None for a gap or an empty interval)."""
        dt = self.t_end_s - self.t_start_s
        if self.energy_j is None or dt <= 0:
            return None
        return self.energy_j / dt


@dataclass(frozen=True)
class Gap:
    """A time a sensor could not be read.

    Attributes:
        component: component name.
        start_s: s since run start when the failed read happened (interval start).
        end_s: s since run start of the next successful read (or the run's end).
        note: what failed.
        recovered: True when a cumulative counter let the energy of the gap be recovered
            exactly afterwards; False when that energy is unknown (not counted as zero:
            the run's energy is a lower bound then, and says so).
    """

    component: str
    start_s: float
    end_s: float
    note: str
    recovered: bool = False

    @property
    def duration_s(self) -> float:
        """Length of the gap, in s."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class ComponentEnergy:
    """Energy of one component over a run or window.

    Attributes:
        name: component name (``cpu:package-0``, ``gpu:0``, ``cpu``, ``ram``).
        kind: what it covers.
        source: measured (which sensor) or estimated (which model).
        counted: whether it is part of the total (sub-components are not).
        energy_j: energy in J, after the scope share.
        uncertainty_j: one-sigma uncertainty in J.
        gap_s: seconds during which the sensor could not be read and energy was lost.
        device: device index / socket, where that applies.
    """

    name: str
    kind: ComponentKind
    source: Source
    counted: bool
    energy_j: float
    uncertainty_j: float
    gap_s: float = 0.0
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "method": self.source.method.value,
            "source": self.source.label(),
            "sensor": self.source.sensor,
            "detail": self.source.detail,
            "counted": self.counted,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "gap_s": self.gap_s,
            "device": self.device,
        }


@dataclass(frozen=True)
class WindowResult:
    """A named phase of a run (``train``, ``eval``); windows nest.

    Attributes:
        name: the window's own name.
        path: slash-joined names from the outermost window (``epoch-1/eval``).
        start_s: s since the run started.
        end_s: s since the run started.
        energy_j: counted energy inside the window, in J.
        uncertainty_j: one-sigma uncertainty, in J.
        components: per-component energy inside the window.
    """

    name: str
    path: str
    start_s: float
    end_s: float
    energy_j: float
    uncertainty_j: float
    components: tuple[ComponentEnergy, ...] = ()

    @property
    def duration_s(self) -> float:
        """Length of the window, in s."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "path": self.path,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "components": [c.to_dict() for c in self.components],
        }


@dataclass(frozen=True)
class CarbonFigures:
    """Emissions of a run. Filled by the carbon layer; None on a run until it is.

    Attributes:
        emissions_g: gCO2e.
        intensity_g_per_kwh: the (energy-weighted mean) grid intensity used.
        zone: the grid zone.
        pue: the power usage effectiveness applied.
        intensity_source: where the intensity came from (dataset and year, or live API).
    """

    emissions_g: float
    intensity_g_per_kwh: float
    zone: str
    pue: float
    intensity_source: str


@dataclass(frozen=True)
class MemberResult:
    """One member's part of a run with several members (docs/run.md, "Many processes").

    Attributes:
        run_id: the member's own record in the store (the run's id for the first member).
        role: ``host`` (read its host's meters; counted in the run's total) or ``rank``
            (its process share only; never added to the total).
        host: the host it ran on.
        pid: its process id.
        rank: its global rank, or None.
        local_rank: its rank on its host, or None.
        world_size: the job's number of ranks, or None.
        scope: what its energy covers (``rank`` members: process).
        status: its own status: a member whose process died reads ``interrupted``.
        offset_s: when it started on the run's timeline, s after the run's start (taken
            from the store server's clock, so a host's skewed clock does not move it).
        duration_s: how long it tracked, in s (its own monotonic clock).
        energy_j: its counted energy, in J.
        uncertainty_j: one-sigma uncertainty of ``energy_j``, in J.
        components: its per-component energy.
        windows: its named phases, on its own timeline (s since its start).
        allocation: what it was given and its machine's size, as it recorded them (None
            for a member recorded by an older wattwise, or not finished yet).
    """

    run_id: str
    role: MemberRole
    host: str
    pid: int | None
    rank: int | None
    local_rank: int | None
    world_size: int | None
    scope: Scope
    status: RunStatus
    offset_s: float
    duration_s: float
    energy_j: float
    uncertainty_j: float
    components: tuple[ComponentEnergy, ...] = ()
    windows: tuple[WindowResult, ...] = ()
    allocation: RunAllocation | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "role": self.role.value,
            "host": self.host,
            "pid": self.pid,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "scope": self.scope.value,
            "status": self.status.value,
            "offset_s": self.offset_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "components": [c.to_dict() for c in self.components],
            "windows": [w.to_dict() for w in self.windows],
            "allocation": self.allocation.to_dict() if self.allocation else None,
        }


@dataclass(frozen=True)
class HostPart:
    """One host of a run: its energy (its ``host`` member's) and its ranks' shares.

    Attributes:
        host: the host's name.
        status: its ``host`` member's status (``interrupted``: the host died).
        energy_j: the host's counted energy, in J (in the total once).
        uncertainty_j: one-sigma uncertainty, in J.
        ranks: how many ``rank`` members ran there.
        ranks_energy_j: the sum of their process shares, in J (at most ``energy_j``).
    """

    host: str
    status: RunStatus
    energy_j: float
    uncertainty_j: float
    ranks: int
    ranks_energy_j: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "host": self.host,
            "status": self.status.value,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "ranks": self.ranks,
            "ranks_energy_j": self.ranks_energy_j,
        }


@dataclass(frozen=True)
class RunResult:
    """Everything known about one tracked run.

    Attributes:
        run_id: unique id (32 hex digits).
        name: the user's name for the run.
        status: running, completed, failed or interrupted.
        scope: machine or process.
        started_at: UTC start time.
        ended_at: UTC end time, or None while running / when interrupted.
        duration_s: wall-clock length, in s (up to the last heartbeat when interrupted).
        energy_j: sum of the counted components, in J (gross, before any baseline).
        uncertainty_j: one-sigma uncertainty of ``energy_j``, in J: components of one
            sensor or model (one ``(method, sensor)``) add linearly, as they share a scale
            error; those groups add in quadrature (docs/estimate-model.md).
        baseline_power_w: idle power measured before the run, in W, or None.
        net_energy_j: ``energy_j`` less the baseline power of each counted component over
            the time its energy is known (sensor gaps whose energy was lost are left out of
            both), in J, or None without baseline.
        net_uncertainty_j: one-sigma uncertainty of ``net_energy_j``: ``uncertainty_j`` plus
            the baseline's over the time subtracted, in J, or None without baseline.
        components: per-component energy.
        windows: named phases.
        gaps: sensor gaps.
        exit_code: the tracked command's exit code, for ``wattwise run``.
        command: the tracked command line, for ``wattwise run``.
        host: host name.
        pid: id of the process that tracked the run.
        carbon: emissions, or None when not computed.
        samples: the power timeline (may be empty when not loaded). From the store with
            ``with_samples=True``: every sample. On a tracker's result, and from the store
            with ``timeline_points``: a bounded, downsampled timeline, each point the exact
            sum of the samples it merges (docs/store.md, "Runs that last weeks").
        members: the processes that took part, when more than one did (empty for a run
            of one process): the run's components, samples, gaps and windows are then
            those of its ``host`` members, named ``HOST/COMPONENT`` when it spans hosts.
        allocation: what the run (its first ``host`` member) was given and its machine's
            size, recorded at its start; None for a run stored by an older wattwise.
    """

    run_id: str
    name: str
    status: RunStatus
    scope: Scope
    started_at: datetime
    ended_at: datetime | None
    duration_s: float
    energy_j: float
    uncertainty_j: float
    baseline_power_w: float | None = None
    net_energy_j: float | None = None
    net_uncertainty_j: float | None = None
    components: tuple[ComponentEnergy, ...] = ()
    windows: tuple[WindowResult, ...] = ()
    gaps: tuple[Gap, ...] = ()
    exit_code: int | None = None
    command: tuple[str, ...] | None = None
    host: str = ""
    pid: int | None = None
    carbon: CarbonFigures | None = None
    samples: tuple[Sample, ...] = field(default=(), repr=False)
    members: tuple[MemberResult, ...] = ()
    allocation: RunAllocation | None = None

    @property
    def hosts(self) -> tuple[HostPart, ...]:
        """Per host: its energy and its ranks' shares (empty for a run of one process)."""
        parts = []
        for host in dict.fromkeys(m.host for m in self.members):
            here = [m for m in self.members if m.host == host]
            readers = [m for m in here if m.role is MemberRole.HOST]
            ranks = [m for m in here if m.role is MemberRole.RANK]
            status = readers[0].status if readers else RunStatus.INTERRUPTED
            parts.append(
                HostPart(
                    host=host,
                    status=status,
                    energy_j=sum(m.energy_j for m in readers),
                    uncertainty_j=sum(m.uncertainty_j for m in readers),
                    ranks=len(ranks),
                    ranks_energy_j=sum(m.energy_j for m in ranks),
                )
            )
        return tuple(parts)

    @property
    def methods(self) -> set[Method]:
        """The methods behind the counted components (measured, estimated or both)."""
        return {c.source.method for c in self.components if c.counted}

    @property
    def provenance(self) -> str:
        """``measured``, ``estimated`` or ``mixed``: what the total is made of."""
        methods = self.methods
        if methods == {Method.MEASURED}:
            return "measured"
        if methods == {Method.ESTIMATED}:
            return "estimated"
        return "mixed" if methods else "none"

    @property
    def energy_lost_s(self) -> float:
        """Seconds of unrecovered sensor gaps on counted components."""
        counted = {c.name for c in self.components if c.counted}
        return sum(g.duration_s for g in self.gaps if not g.recovered and g.component in counted)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready dict (the schema of ``--json`` outputs)."""
        carbon = self.carbon
        return {
            "run_id": self.run_id,
            "name": self.name,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "command": list(self.command) if self.command is not None else None,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "provenance": self.provenance,
            "energy_is_lower_bound": self.energy_lost_s > 0,
            "scope": self.scope.value,
            "baseline_power_w": self.baseline_power_w,
            "net_energy_j": self.net_energy_j,
            "net_uncertainty_j": self.net_uncertainty_j,
            "components": [c.to_dict() for c in self.components],
            "windows": [w.to_dict() for w in self.windows],
            "gaps": [
                {
                    "component": g.component,
                    "start_s": g.start_s,
                    "end_s": g.end_s,
                    "note": g.note,
                    "recovered": g.recovered,
                }
                for g in self.gaps
            ],
            "host": self.host,
            "pid": self.pid,
            "emissions_g": carbon.emissions_g if carbon else None,
            "intensity_g_per_kwh": carbon.intensity_g_per_kwh if carbon else None,
            "zone": carbon.zone if carbon else None,
            "pue": carbon.pue if carbon else None,
            "intensity_source": carbon.intensity_source if carbon else None,
            "hosts": [h.to_dict() for h in self.hosts],
            "members": [m.to_dict() for m in self.members],
            "allocation": self.allocation.to_dict() if self.allocation else None,
        }
