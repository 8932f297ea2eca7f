"""A run's timeline read short: the finished run's kept bounded timeline, or the samples
aggregated in SQL by stretches. Works inside the caller's transaction, as ``_rows``.

Kept apart from ``_rows`` (the rows of the five tables and back) because it is one
question, "the power timeline of a run of any length, in a few thousand points",
answered two ways (docs/store.md, "Runs that last weeks").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from wattwise._records import Sample
from wattwise._records.timeline import merged_sample
from wattwise.store import _schema as s
from wattwise.store._rows import _opt_float, load_samples

__all__ = [
    "TIMELINE_KIND",
    "TIMELINE_PREFIX",
    "load_saved_timeline",
    "load_timeline",
    "save_timeline",
]


#: The studies-table id prefix and kind of a finished run's downsampled timeline.
TIMELINE_PREFIX = "timeline-"
TIMELINE_KIND = "timeline"


def save_timeline(
    conn: sa.Connection, run_id: str, samples: Sequence[Sample], at: datetime
) -> None:
    """Keep a finished run's bounded timeline (the tracker's, exact sums) beside its samples.

    A report then reads those few thousand points instead of aggregating millions of rows.
    Schema version 1 has no table for it, so it is a document in the studies table
    (``timeline-<run id>``, kind ``timeline``), as a training history is (``train-<id>``).
    """
    study_id = TIMELINE_PREFIX + run_id
    points = [[x.component, x.t_start_s, x.t_end_s, x.energy_j, x.note] for x in samples]
    conn.execute(s.studies.delete().where(s.studies.c.study_id == study_id))
    conn.execute(
        s.studies.insert().values(
            study_id=study_id,
            kind=TIMELINE_KIND,
            name=f"timeline of run {run_id}",
            created_at=at,
            finished_at=at,
            params={"run_id": run_id, "points": len(samples)},
            results={"samples": points},
        )
    )


def load_saved_timeline(conn: sa.Connection, run_id: str) -> list[Sample] | None:
    """The timeline :func:`save_timeline` kept for a run, or None."""
    found = conn.execute(
        sa.select(s.studies.c.kind, s.studies.c.results).where(
            s.studies.c.study_id == TIMELINE_PREFIX + run_id
        )
    ).first()
    if found is None or found.kind != TIMELINE_KIND or not found.results:
        return None
    return [
        Sample(str(c), float(a), float(b), _opt_float(e), n)
        for c, a, b, e, n in found.results["samples"]
    ]


def load_timeline(conn: sa.Connection, run_id: str, *, points: int) -> list[Sample]:
    """A run's timeline downsampled in the database: about ``points`` points per component.

    A run with no more samples than that holds is read as it is. A longer one is cut, in
    the order its samples were recorded (their ids), into ``points`` consecutive stretches;
    each gives one point per component, the aggregate of its samples there (SQL ``MIN``,
    ``MAX``, ``SUM``, ``COUNT``), so only aggregates leave the database. A point's energy is
    the exact sum of its samples' known energies, so the timeline's total is the run's.
    A stretch is read by a range of the primary key with one ``GROUP BY component``:
    SQLite sorts the rows of a ``GROUP BY``, and one query over a run of weeks (millions of
    rows) would sort them all, where stretches sort a few thousand at a time.
    """
    c = s.samples.c
    # One query: the index is (run_id, t_start_s), so each of MIN and MAX reads the run's
    # index entries (no seek to the first or last id); together they read them once.
    first, last = conn.execute(
        sa.select(sa.func.min(c.id), sa.func.max(c.id)).where(c.run_id == run_id)
    ).one()
    if first is None or last is None:
        return []
    order = _component_order(conn, run_id)
    span = int(last) - int(first) + 1
    if span <= points * max(1, len(order)):
        return load_samples(conn, [run_id])[run_id]
    lo: sa.BindParameter[int] = sa.bindparam("lo")
    hi: sa.BindParameter[int] = sa.bindparam("hi")
    query = (
        sa.select(
            c.component,
            sa.func.min(c.t_start_s),
            sa.func.max(c.t_end_s),
            sa.func.sum(c.energy_j),
            sa.func.sum(c.t_end_s - c.t_start_s).filter(c.energy_j.is_(None)),
        )
        # ``run_id || ''``: not the run_id index, so that the stretch is read straight from
        # the table by its key range (a fifth faster on SQLite), the run's rows filtered there.
        .where((c.run_id + "") == run_id, c.id >= lo, c.id < hi)
        .group_by(c.component)
    )
    edges = sorted({int(first) + span * k // points for k in range(points)})
    edges.append(int(last) + 1)
    found = [
        merged_sample(str(comp), float(start), float(end), _opt_float(energy), float(gaps or 0))
        for a, b in itertools.pairwise(edges)
        for comp, start, end, energy, gaps in conn.execute(query, {"lo": a, "hi": b})
    ]
    found.sort(key=lambda x: (x.t_end_s, order.get(x.component, len(order)), x.component))
    return found


def _component_order(conn: sa.Connection, run_id: str) -> dict[str, int]:
    names = conn.execute(
        sa.select(s.components.c.name)
        .where(s.components.c.run_id == run_id)
        .order_by(s.components.c.position, s.components.c.id)
    ).scalars()
    return {str(name): i for i, name in enumerate(names)}
