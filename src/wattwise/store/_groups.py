"""Runs with members: joining a run (the host election) and reading it back as one run.

Every run row belongs to a group: its own (``group_id = run_id``, what every run of one
process is) or, for a process that joined a run, that run's. The group's first row is the
run users see; the others are its members' own records, each written exactly like a run
of one process (components, samples, gaps, windows, heartbeats), so a member that dies
leaves its part ``interrupted`` while the others go on.

**The election.** In each group the first member of a host to join claims it
(``claims_host``, unique per group): it reads the machine's meters there, its energy is the
host's, and only such ``host`` members count into the run's total. Every later member on
that host is a ``rank`` member: its process share only. A claim whose member is gone (its
process dead, or its heartbeat stale) is released to the next member that joins there.

**Clocks.** A joining member's start, heartbeats and end are taken from the store server's
clock (PostgreSQL's ``clock_timestamp()``; for SQLite, a file on this machine, this
machine's clock), never from the member's host; its samples stay relative to its own
monotonic start, and its ``offset_s`` on the run's timeline is the server time of its join
less the server time of the run's start (``anchor_at``). A host whose wall clock is off by
an hour still lands where it ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wattwise._errors import StoreError
from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Member,
    MemberResult,
    MemberRole,
    RunResult,
    RunStatus,
    Scope,
    combined_uncertainty,
)
from wattwise.store import _schema as s
from wattwise.store._liveness import derive_status

__all__ = ["GroupClosed", "Joined", "compose", "join", "server_now", "status_of"]


class GroupClosed(StoreError):
    """The run to join has finished: every member of it has stopped."""


@dataclass(frozen=True)
class Joined:
    """What joining a run decided for a member.

    Attributes:
        run_id: the member's own row (the group's id for the member that created it).
        role: ``host`` (reads this host's meters) or ``rank`` (its process share).
        offset_s: its start on the run's timeline, s after the run's start.
    """

    run_id: str
    role: MemberRole
    offset_s: float


def server_now(conn: sa.Connection) -> datetime:
    """The store server's clock (aware UTC); SQLite's server is this machine."""
    if conn.dialect.name == "sqlite":
        return datetime.now(UTC)
    value = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


def status_of(row: sa.Row[Any], now: datetime) -> RunStatus:
    """A run row's status as read (a dead member's ``running`` reads ``interrupted``)."""
    return derive_status(
        RunStatus(row.status),
        host=str(row.host),
        pid=row.pid,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        now=now,
        pid_created_s=row.pid_created_s,
    )


def _lock_group(conn: sa.Connection, group_id: str) -> None:
    """Serialise joins of one group on PostgreSQL (SQLite: BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "sqlite":
        return
    key = int.from_bytes(hashlib.sha256(group_id.encode()).digest()[:8], "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def join(
    conn: sa.Connection,
    *,
    group_id: str,
    run_id: str,
    name: str,
    scope: Scope,
    member: Member,
    pid_created_s: float | None,
    command: tuple[str, ...] | None,
    baseline_power_w: float | None,
) -> Joined:
    """Join (or create) the run ``group_id`` as ``run_id``: the member's row is written,
    running, and the host claimed when no live member holds it (see the module docstring).

    Raises:
        GroupClosed: every member of the run has stopped.
        StoreError: ``group_id`` is itself a member of another run.
    """
    _lock_group(conn, group_id)
    now = server_now(conn)
    root = conn.execute(sa.select(s.runs).where(s.runs.c.run_id == group_id)).first()
    if root is not None and root.group_id not in (None, root.run_id):
        raise StoreError(f"run {group_id} is a member of run {root.group_id}: join that one")
    if root is not None:
        members = list(conn.execute(sa.select(s.runs).where(s.runs.c.group_id == group_id)))
        if not any(status_of(r, now) is RunStatus.RUNNING for r in members):
            raise GroupClosed(f"run {group_id} has finished: a new run needs a new id")
        own_id, anchor = run_id, root.anchor_at or root.started_at
        claimant = next((r for r in members if r.claims_host == member.host), None)
        if claimant is not None and status_of(claimant, now) is not RunStatus.RUNNING:
            conn.execute(
                s.runs.update().where(s.runs.c.run_id == claimant.run_id).values(claims_host=None)
            )
            claimant = None
        role = MemberRole.HOST if claimant is None else MemberRole.RANK
    else:
        own_id, anchor, role = group_id, now, MemberRole.HOST
    offset_s = max(0.0, (now - anchor).total_seconds())
    conn.execute(
        s.runs.insert().values(
            run_id=own_id,
            name=name,
            status=RunStatus.RUNNING.value,
            scope=(scope if role is MemberRole.HOST else Scope.PROCESS).value,
            started_at=now,
            heartbeat_at=now,
            host=member.host,
            pid=member.pid,
            command=list(command) if command is not None else None,
            baseline_power_w=baseline_power_w,
            group_id=group_id,
            role=role.value,
            claims_host=member.host if role is MemberRole.HOST else None,
            rank=member.rank,
            local_rank=member.local_rank,
            world_size=member.world_size,
            anchor_at=now,
            offset_s=offset_s,
            server_clock=True,
            pid_created_s=pid_created_s,
        )
    )
    return Joined(own_id, role, offset_s)


# -- reading a group back as one run ----------------------------------------------------------


def _member_of(row: sa.Row[Any], result: RunResult) -> MemberResult:
    role = MemberRole(row.role) if row.role is not None else MemberRole.HOST
    return MemberResult(
        run_id=result.run_id,
        role=role,
        host=result.host,
        pid=result.pid,
        rank=row.rank,
        local_rank=row.local_rank,
        world_size=row.world_size,
        scope=result.scope,
        status=result.status,
        offset_s=float(row.offset_s or 0.0),
        duration_s=result.duration_s,
        energy_j=result.energy_j,
        uncertainty_j=result.uncertainty_j,
        components=result.components,
        windows=result.windows,
        allocation=result.allocation,
    )


def _status(statuses: Sequence[RunStatus]) -> RunStatus:
    """Running while any member runs; then the worst: failed, interrupted, completed."""
    for status in (RunStatus.RUNNING, RunStatus.FAILED, RunStatus.INTERRUPTED):
        if status in statuses:
            return status
    return RunStatus.COMPLETED


def _merge(comps: Sequence[ComponentEnergy]) -> tuple[ComponentEnergy, ...]:
    """One component per name (a host claimed again after its member died has two)."""
    merged: dict[str, ComponentEnergy] = {}
    for c in comps:
        old = merged.get(c.name)
        merged[c.name] = (
            c
            if old is None
            else replace(
                old,
                energy_j=old.energy_j + c.energy_j,
                uncertainty_j=old.uncertainty_j + c.uncertainty_j,
                gap_s=old.gap_s + c.gap_s,
            )
        )
    return tuple(merged.values())


def _carbon(parts: Sequence[RunResult]) -> CarbonFigures | None:
    figures = [p.carbon for p in parts]
    if not figures or any(f is None for f in figures):
        return None
    known = [f for f in figures if f is not None]
    energy_kwh = sum(p.energy_j for p in parts) / 3.6e6
    emissions = sum(f.emissions_g for f in known)
    return replace(
        known[0],
        emissions_g=emissions,
        intensity_g_per_kwh=emissions / energy_kwh if energy_kwh > 0 else 0.0,
    )


def compose(
    root_row: sa.Row[Any], root: RunResult, children: Sequence[tuple[sa.Row[Any], RunResult]]
) -> RunResult:
    """The run of a group: its ``host`` members' components, timeline, gaps and windows
    (shifted onto the run's timeline; named ``HOST/NAME`` when it spans hosts), their
    counted energy as the total, and every member's own figures in ``members``."""
    pairs = [(root_row, root), *children]
    members = tuple(_member_of(row, res) for row, res in pairs)
    readers = [
        (m, res) for m, (_, res) in zip(members, pairs, strict=True) if m.role is MemberRole.HOST
    ]
    many_hosts = len({m.host for m in members}) > 1

    def named(name: str, host: str) -> str:
        return f"{host}/{name}" if many_hosts else name

    comps = _merge(
        [replace(c, name=named(c.name, m.host)) for m, res in readers for c in res.components]
    )
    samples = tuple(
        replace(
            x,
            component=named(x.component, m.host),
            t_start_s=x.t_start_s + m.offset_s,
            t_end_s=x.t_end_s + m.offset_s,
        )
        for m, res in readers
        for x in res.samples
    )
    gaps = tuple(
        replace(
            g,
            component=named(g.component, m.host),
            start_s=g.start_s + m.offset_s,
            end_s=g.end_s + m.offset_s,
        )
        for m, res in readers
        for g in res.gaps
    )
    windows = tuple(
        replace(
            w,
            start_s=w.start_s + m.offset_s,
            end_s=w.end_s + m.offset_s,
            components=tuple(replace(c, name=named(c.name, m.host)) for c in w.components),
        )
        for m, res in readers
        for w in res.windows
    )
    status = _status([m.status for m in members])
    duration_s = max(m.offset_s + m.duration_s for m in members)
    parts = [res for _, res in readers]
    baseline = net = net_u = None
    if parts and all(p.baseline_power_w is not None for p in parts):
        baseline = sum(p.baseline_power_w or 0.0 for p in parts)
    if parts and all(p.net_energy_j is not None for p in parts):
        net = sum(p.net_energy_j or 0.0 for p in parts)
        net_u = sum(p.net_uncertainty_j or 0.0 for p in parts)
    return replace(
        root,
        status=status,
        ended_at=root.started_at + timedelta(seconds=duration_s)
        if status is not RunStatus.RUNNING
        else None,
        duration_s=duration_s,
        energy_j=sum(c.energy_j for c in comps if c.counted),
        uncertainty_j=combined_uncertainty(comps),
        baseline_power_w=baseline,
        net_energy_j=net,
        net_uncertainty_j=net_u,
        components=comps,
        windows=windows,
        gaps=gaps,
        samples=samples,
        carbon=_carbon(parts),
        members=members,
    )
