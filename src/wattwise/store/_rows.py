"""Rows to records and back: how runs, components, windows, gaps and samples are written
and read. Every function works inside the caller's transaction (a ``Connection``).

Identities used to make writes idempotent: a component by its name, a window by its path
and start, a gap by its component and start, a sample by its component and interval.

Why one module of ~600 lines: writing and reading back the same five tables is one
mapping, kept together so a column and its reader change in one place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    RunAllocation,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
    combined_uncertainty,
    net_uncertainty,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import _schema as s
from wattwise.store._groups import compose, server_now, status_of
from wattwise.store._schema import SCHEMA_VERSION_KEY

__all__ = [
    "allocation_from_row",
    "allocation_value",
    "carbon_values",
    "finish_components",
    "insert_components",
    "insert_missing_samples",
    "is_group_root",
    "keep_server_times",
    "load_runs",
    "load_samples",
    "read_version",
    "run_exists",
    "sample_row",
    "upsert_gaps",
    "upsert_windows",
]


def read_version(conn: sa.Connection) -> int | None:
    """The schema version in the meta table; None when there is no such table or row."""
    if not sa.inspect(conn).has_table(s.meta.name):
        return None
    value = conn.execute(
        sa.select(s.meta.c.value).where(s.meta.c.key == SCHEMA_VERSION_KEY)
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def run_exists(conn: sa.Connection, run_id: str) -> bool:
    """Whether a run has exactly this id."""
    found = conn.execute(sa.select(s.runs.c.run_id).where(s.runs.c.run_id == run_id)).first()
    return found is not None


def is_group_root() -> sa.ColumnElement[bool]:
    """Rows that are runs users see: not the records of members that joined another run."""
    return sa.or_(s.runs.c.group_id.is_(None), s.runs.c.group_id == s.runs.c.run_id)


def keep_server_times(
    conn: sa.Connection, result: RunResult, values: dict[str, Any], now: datetime
) -> None:
    """For a member that joined a run (server clock): keep the start the store gave it and
    end it by its own monotonic duration, never by its host's wall clock."""
    row = conn.execute(
        sa.select(s.runs.c.server_clock, s.runs.c.started_at).where(
            s.runs.c.run_id == result.run_id
        )
    ).first()
    if row is None or not row.server_clock:
        return
    for kept in ("started_at", "host", "pid"):  # as it joined
        values.pop(kept, None)
    values["ended_at"] = row.started_at + timedelta(seconds=result.duration_s)
    values["heartbeat_at"] = now


def carbon_values(carbon: CarbonFigures) -> dict[str, Any]:
    """The carbon columns of the runs table."""
    return {
        "emissions_g": carbon.emissions_g,
        "intensity_g_per_kwh": carbon.intensity_g_per_kwh,
        "zone": carbon.zone,
        "pue": carbon.pue,
        "intensity_source": carbon.intensity_source,
    }


def allocation_value(allocation: RunAllocation | None) -> dict[str, Any] | None:
    """The ``allocation`` column of the runs table (JSON), or None."""
    return allocation.to_dict() if allocation is not None else None


def allocation_from_row(row: sa.Row[Any]) -> RunAllocation | None:
    """The run's recorded allocation; None when it has none (stored before schema 3) or
    one this wattwise cannot read (it is then left out rather than failing the run)."""
    data = row.allocation
    if data is None:
        return None
    try:
        return RunAllocation.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def _next_position(conn: sa.Connection, table: sa.Table, run_id: str) -> int:
    count = conn.execute(
        sa.select(sa.func.count()).select_from(table).where(table.c.run_id == run_id)
    ).scalar_one()
    return int(count)


def insert_components(conn: sa.Connection, run_id: str, components: Sequence[Component]) -> None:
    """Add the components whose names the run does not have yet, after the others."""
    known = {
        str(n)
        for n in conn.execute(
            sa.select(s.components.c.name).where(s.components.c.run_id == run_id)
        ).scalars()
    }
    position = _next_position(conn, s.components, run_id)
    rows = []
    for comp in components:
        if comp.name in known:
            continue
        known.add(comp.name)
        rows.append(
            {
                "run_id": run_id,
                "position": position,
                "name": comp.name,
                "kind": comp.kind.value,
                "method": comp.source.method.value,
                "sensor": comp.source.sensor,
                "detail": comp.source.detail,
                "counted": comp.counted,
                "device": comp.device,
                "relative_uncertainty": comp.relative_uncertainty,
            }
        )
        position += 1
    if rows:
        conn.execute(s.components.insert(), rows)


def finish_components(conn: sa.Connection, run_id: str, finals: Sequence[ComponentEnergy]) -> None:
    """Write the final energies, in the order of ``finals``; add components not stored yet."""
    existing = {
        str(r.name): int(r.id)
        for r in conn.execute(
            sa.select(s.components.c.id, s.components.c.name).where(s.components.c.run_id == run_id)
        )
    }
    # The result's order wins; components it does not mention go after, unfinished.
    for position, comp in enumerate(finals):
        values: dict[str, Any] = {
            "position": position,
            "kind": comp.kind.value,
            "method": comp.source.method.value,
            "sensor": comp.source.sensor,
            "detail": comp.source.detail,
            "counted": comp.counted,
            "device": comp.device,
            "energy_j": comp.energy_j,
            "uncertainty_j": comp.uncertainty_j,
            "gap_s": comp.gap_s,
        }
        row_id = existing.pop(comp.name, None)
        if row_id is None:
            relative = comp.uncertainty_j / comp.energy_j if comp.energy_j > 0 else 0.0
            conn.execute(
                s.components.insert().values(
                    run_id=run_id, name=comp.name, relative_uncertainty=relative, **values
                )
            )
        else:
            conn.execute(s.components.update().where(s.components.c.id == row_id).values(**values))
    for offset, row_id in enumerate(sorted(existing.values())):
        conn.execute(
            s.components.update()
            .where(s.components.c.id == row_id)
            .values(position=len(finals) + offset)
        )


def _upsert_keyed(
    conn: sa.Connection,
    table: sa.Table,
    run_id: str,
    key_columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    *,
    reorder: bool,
) -> None:
    """Insert the rows whose key is new and update those whose key is stored.

    With ``reorder``, ``rows`` give the final order and stored rows they do not mention go
    after them; without, stored rows keep their place and new rows go after them.
    """
    key_of = {
        tuple(r[2:]): int(r[0])
        for r in conn.execute(
            sa.select(table.c.id, table.c.position, *(table.c[k] for k in key_columns))
            .where(table.c.run_id == run_id)
            .order_by(table.c.position, table.c.id)
        )
    }
    untouched = list(key_of.values())  # in stored order
    position = 0 if reorder else len(key_of)
    for row in rows:
        key = tuple(row[k] for k in key_columns)
        row_id = key_of.get(key)
        if row_id is None:
            inserted = conn.execute(table.insert().values(run_id=run_id, position=position, **row))
            new_key = inserted.inserted_primary_key
            assert new_key is not None
            key_of[key] = int(new_key[0])
            position += 1
        elif reorder:
            conn.execute(
                table.update().where(table.c.id == row_id).values(position=position, **row)
            )
            if row_id in untouched:
                untouched.remove(row_id)
            position += 1
        else:
            conn.execute(table.update().where(table.c.id == row_id).values(**row))
    if reorder:
        for row_id in untouched:
            conn.execute(table.update().where(table.c.id == row_id).values(position=position))
            position += 1


def upsert_windows(
    conn: sa.Connection, run_id: str, windows: Sequence[WindowResult], *, reorder: bool = False
) -> None:
    """Add or replace windows (by path and start); ``reorder``: in the order given."""
    rows = [
        {
            "name": w.name,
            "path": w.path,
            "start_s": w.start_s,
            "end_s": w.end_s,
            "energy_j": w.energy_j,
            "uncertainty_j": w.uncertainty_j,
            "components": [_component_energy_to_json(c) for c in w.components],
        }
        for w in windows
    ]
    _upsert_keyed(conn, s.windows, run_id, ("path", "start_s"), rows, reorder=reorder)


def upsert_gaps(
    conn: sa.Connection, run_id: str, gaps: Sequence[Gap], *, reorder: bool = False
) -> None:
    """Add or update gaps (by component and start); ``reorder``: in the order given."""
    rows = [
        {
            "component": g.component,
            "start_s": g.start_s,
            "end_s": g.end_s,
            "note": g.note,
            "recovered": g.recovered,
        }
        for g in gaps
    ]
    _upsert_keyed(conn, s.gaps, run_id, ("component", "start_s"), rows, reorder=reorder)


def sample_row(run_id: str, sample: Sample) -> dict[str, Any]:
    """The row of one sample."""
    return {
        "run_id": run_id,
        "component": sample.component,
        "t_start_s": sample.t_start_s,
        "t_end_s": sample.t_end_s,
        "energy_j": sample.energy_j,
        "note": sample.note,
    }


def insert_missing_samples(conn: sa.Connection, run_id: str, samples: Sequence[Sample]) -> bool:
    """Add the samples not stored yet (same component and interval).

    A run whose timeline was streamed keeps it: when the run has more stored samples than
    ``samples`` hold, these are not its full timeline (a tracker's result holds a bounded,
    downsampled one) and nothing is added; the stored keys are then never loaded either,
    which for a run of weeks would be millions.

    Returns:
        True when ``samples`` are such a downsampled timeline (see :func:`save_timeline`).
    """
    if not samples:
        return False
    has_more = conn.execute(
        sa.select(s.samples.c.id).where(s.samples.c.run_id == run_id).offset(len(samples)).limit(1)
    ).first()
    if has_more is not None:
        return True
    stored = {
        (str(r.component), float(r.t_start_s), float(r.t_end_s))
        for r in conn.execute(
            sa.select(s.samples.c.component, s.samples.c.t_start_s, s.samples.c.t_end_s).where(
                s.samples.c.run_id == run_id
            )
        )
    }
    rows = []
    for sample in samples:
        key = (sample.component, sample.t_start_s, sample.t_end_s)
        if key not in stored:
            stored.add(key)
            rows.append(sample_row(run_id, sample))
    if rows:
        conn.execute(s.samples.insert(), rows)
    return False


def _component_energy_to_json(comp: ComponentEnergy) -> dict[str, Any]:
    return {
        "name": comp.name,
        "kind": comp.kind.value,
        "method": comp.source.method.value,
        "sensor": comp.source.sensor,
        "detail": comp.source.detail,
        "counted": comp.counted,
        "energy_j": comp.energy_j,
        "uncertainty_j": comp.uncertainty_j,
        "gap_s": comp.gap_s,
        "device": comp.device,
    }


def _component_energy_from_json(data: Mapping[str, Any]) -> ComponentEnergy:
    return ComponentEnergy(
        name=str(data["name"]),
        kind=ComponentKind(data["kind"]),
        source=Source(Method(data["method"]), str(data["sensor"]), str(data["detail"])),
        counted=bool(data["counted"]),
        energy_j=float(data["energy_j"]),
        uncertainty_j=float(data["uncertainty_j"]),
        gap_s=float(data["gap_s"]),
        device=data["device"],
    )


def _group(
    conn: sa.Connection, table: sa.Table, run_ids: Sequence[str], *order: sa.Column[Any]
) -> dict[str, list[sa.Row[Any]]]:
    grouped: dict[str, list[sa.Row[Any]]] = defaultdict(list)
    for chunk in _chunks(run_ids):
        query = sa.select(table).where(table.c.run_id.in_(chunk)).order_by(*order)
        for row in conn.execute(query):
            grouped[str(row.run_id)].append(row)
    return grouped


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    # Keeps IN lists under SQLite's bound-parameter limit for long run lists.
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_samples(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, list[Sample]]:
    """The timelines of runs, each in the order it was recorded."""
    timeline: dict[str, list[Sample]] = {run_id: [] for run_id in run_ids}
    for chunk in _chunks(run_ids):
        query = sa.select(s.samples).where(s.samples.c.run_id.in_(chunk)).order_by(s.samples.c.id)
        for row in conn.execute(query):
            timeline[str(row.run_id)].append(
                Sample(
                    component=str(row.component),
                    t_start_s=float(row.t_start_s),
                    t_end_s=float(row.t_end_s),
                    energy_j=float(row.energy_j) if row.energy_j is not None else None,
                    note=row.note,
                )
            )
    return timeline


def _live_sums(
    conn: sa.Connection, run_ids: Sequence[str], gaps: Mapping[str, tuple[Gap, ...]]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per run and component of unfinished runs: energy summed over samples (J) and
    seconds of gap samples not covered by a recovered gap (s)."""
    sums: dict[str, dict[str, float]] = defaultdict(dict)
    lost: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for chunk in _chunks(run_ids):
        energy = (
            sa.select(s.samples.c.run_id, s.samples.c.component, sa.func.sum(s.samples.c.energy_j))
            .where(s.samples.c.run_id.in_(chunk), s.samples.c.energy_j.is_not(None))
            .group_by(s.samples.c.run_id, s.samples.c.component)
        )
        for run_id, component, total in conn.execute(energy):
            sums[str(run_id)][str(component)] = float(total)
        holes = sa.select(
            s.samples.c.run_id,
            s.samples.c.component,
            s.samples.c.t_start_s,
            s.samples.c.t_end_s,
        ).where(s.samples.c.run_id.in_(chunk), s.samples.c.energy_j.is_(None))
        for run_id, component, t_start, t_end in conn.execute(holes):
            recovered = [
                g for g in gaps.get(str(run_id), ()) if g.recovered and g.component == component
            ]
            if any(g.start_s <= t_start and t_end <= g.end_s for g in recovered):
                continue
            lost[str(run_id)][str(component)] += max(0.0, float(t_end) - float(t_start))
    return sums, lost


def _gap_from_row(row: sa.Row[Any]) -> Gap:
    return Gap(
        component=str(row.component),
        start_s=float(row.start_s),
        end_s=float(row.end_s),
        note=str(row.note),
        recovered=bool(row.recovered),
    )


def _window_from_row(row: sa.Row[Any]) -> WindowResult:
    return WindowResult(
        name=str(row.name),
        path=str(row.path),
        start_s=float(row.start_s),
        end_s=float(row.end_s),
        energy_j=float(row.energy_j),
        uncertainty_j=float(row.uncertainty_j),
        components=tuple(_component_energy_from_json(c) for c in row.components),
    )


def _source_of(row: sa.Row[Any]) -> Source:
    return Source(Method(row.method), str(row.sensor), str(row.detail))


def _opt_float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _run_from_rows(
    row: sa.Row[Any],
    *,
    status: RunStatus,
    components: Sequence[sa.Row[Any]],
    windows: tuple[WindowResult, ...],
    gaps: tuple[Gap, ...],
    sums: Mapping[str, float],
    lost: Mapping[str, float],
    samples: tuple[Sample, ...],
) -> RunResult:
    finished = RunStatus(row.status) is not RunStatus.RUNNING
    baseline = _opt_float(row.baseline_power_w)
    if finished:
        comps = tuple(
            ComponentEnergy(
                name=str(c.name),
                kind=ComponentKind(c.kind),
                source=_source_of(c),
                counted=bool(c.counted),
                energy_j=float(c.energy_j),
                uncertainty_j=float(c.uncertainty_j),
                gap_s=float(c.gap_s),
                device=c.device,
            )
            for c in components
            if c.energy_j is not None
        )
        duration_s = float(row.duration_s)
        energy_j = float(row.energy_j)
        uncertainty_j = float(row.uncertainty_j)
        net_energy_j = _opt_float(row.net_energy_j)
        ended_at = row.ended_at
    else:
        comps = tuple(
            ComponentEnergy(
                name=str(c.name),
                kind=ComponentKind(c.kind),
                source=_source_of(c),
                counted=bool(c.counted),
                energy_j=sums.get(c.name, 0.0),
                uncertainty_j=sums.get(c.name, 0.0) * float(c.relative_uncertainty),
                gap_s=lost.get(c.name, 0.0),
                device=c.device,
            )
            for c in components
        )
        duration_s = max(0.0, (row.heartbeat_at - row.started_at).total_seconds())
        energy_j = sum(c.energy_j for c in comps if c.counted)
        uncertainty_j = combined_uncertainty(comps)
        net_energy_j = energy_j - baseline * duration_s if baseline is not None else None
        ended_at = None
    net_uncertainty_j = None
    if net_energy_j is not None:  # not stored: it follows from what is
        net_uncertainty_j = net_uncertainty(
            energy_j,
            uncertainty_j,
            net_energy_j,
            (float(c.relative_uncertainty) for c in components if c.counted),
        )
    carbon = None
    if row.emissions_g is not None:
        carbon = CarbonFigures(
            emissions_g=float(row.emissions_g),
            intensity_g_per_kwh=float(row.intensity_g_per_kwh),
            zone=str(row.zone),
            pue=float(row.pue),
            intensity_source=str(row.intensity_source),
        )
    return RunResult(
        run_id=str(row.run_id),
        name=str(row.name),
        status=status,
        scope=Scope(row.scope),
        started_at=row.started_at,
        ended_at=ended_at,
        duration_s=duration_s,
        energy_j=energy_j,
        uncertainty_j=uncertainty_j,
        baseline_power_w=baseline,
        net_energy_j=net_energy_j,
        net_uncertainty_j=net_uncertainty_j,
        components=comps,
        windows=windows,
        gaps=gaps,
        exit_code=row.exit_code,
        command=tuple(str(a) for a in row.command) if row.command is not None else None,
        host=str(row.host),
        pid=row.pid,
        carbon=carbon,
        samples=samples,
        allocation=allocation_from_row(row),
    )


def load_runs(
    conn: sa.Connection,
    rows: Sequence[sa.Row[Any]],
    *,
    with_samples: bool,
    now: datetime,
    members: bool = True,
) -> list[RunResult]:
    """Build the records of runs from their ``runs`` rows.

    A finished run is read as it was finished. A running one (or one whose process is gone:
    interrupted) is rebuilt from what was stored: each component's energy is the sum of its
    samples (gap samples excluded; their seconds summed in ``gap_s`` unless a recovered gap
    covers them), its uncertainty that energy times its relative uncertainty (the run's
    combined as the tracker combines them, :func:`combined_uncertainty`), the duration
    runs up to the last heartbeat, the windows and gaps are those stored so far.

    Args:
        conn: the connection.
        rows: rows of the runs table.
        with_samples: also load the power timelines.
        now: the current time (aware), to tell interrupted runs.
        members: read a run that others joined as one run with its members
            (:func:`wattwise.store._groups.compose`); False: each row as it is.
    """
    if not rows:
        return []
    ids = [str(r.run_id) for r in rows]
    live = [str(r.run_id) for r in rows if r.status == RunStatus.RUNNING.value]
    comps = _group(conn, s.components, ids, s.components.c.position, s.components.c.id)
    wins = _group(conn, s.windows, ids, s.windows.c.position, s.windows.c.id)
    gap_rows = _group(conn, s.gaps, ids, s.gaps.c.position, s.gaps.c.id)
    gaps = {k: tuple(_gap_from_row(g) for g in v) for k, v in gap_rows.items()}
    sums, lost = _live_sums(conn, live, gaps)
    timeline = load_samples(conn, ids) if with_samples else {}
    results = []
    for row in rows:
        run_id = str(row.run_id)
        status = status_of(row, server_now(conn) if row.server_clock else now)
        results.append(
            _run_from_rows(
                row,
                status=status,
                components=comps.get(run_id, []),
                windows=tuple(_window_from_row(w) for w in wins.get(run_id, [])),
                gaps=gaps.get(run_id, ()),
                sums=sums.get(run_id, {}),
                lost=lost.get(run_id, {}),
                samples=tuple(timeline.get(run_id, ())),
            )
        )
    if members:
        results = _with_members(conn, rows, results, with_samples=with_samples, now=now)
    return results


def _with_members(
    conn: sa.Connection,
    rows: Sequence[sa.Row[Any]],
    results: list[RunResult],
    *,
    with_samples: bool,
    now: datetime,
) -> list[RunResult]:
    """Each run that other processes joined, read as one run with its members."""
    ids = [str(r.run_id) for r in rows]
    joined: dict[str, list[sa.Row[Any]]] = defaultdict(list)
    for chunk in _chunks(ids):
        query = (
            sa.select(s.runs)
            .where(s.runs.c.group_id.in_(chunk), s.runs.c.group_id != s.runs.c.run_id)
            .order_by(s.runs.c.offset_s, s.runs.c.rank, s.runs.c.run_id)
        )
        for row in conn.execute(query):
            joined[str(row.group_id)].append(row)
    if not joined:
        return results
    out = []
    for row, result in zip(rows, results, strict=True):
        children = joined.get(str(row.run_id))
        if not children:
            out.append(result)
            continue
        parts = load_runs(conn, children, with_samples=with_samples, now=now, members=False)
        out.append(compose(row, result, list(zip(children, parts, strict=True))))
    return out
