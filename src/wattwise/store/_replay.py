"""What the replay of a journal left by a process that ended needs from the store.

A tracker that cannot write the store spills samples to a local journal
(``tracking/_journal.py``); when its process dies first, a later process replays that
journal (``tracking/_orphans.py``). It asks here whether the run's process still lives (the
rule of :mod:`wattwise.store._liveness`, never a second one) and writes each batch's samples
that the store does not hold yet. A sample is identified by its component and interval, as
:meth:`~wattwise.store.RunStore.finish_run` identifies it: a batch that reached the store
before the process died (it committed, but the journal still held it) is not written twice.
Each batch is one transaction that first locks the run's row (``SELECT ... FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two processes replaying one journal at once
write it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from wattwise._errors import RunNotFound
from wattwise._records import RunStatus, Sample
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store._liveness import process_alive

__all__ = ["RunProcess", "add_late_samples", "missing_samples", "run_process"]

_Key = tuple[str, float, float]


@dataclass(frozen=True)
class RunProcess:
    """A stored run's tracking process, as the replay of its journal sees it.

    Attributes:
        run_id: the run (a member's own row for a member of a run).
        stored_status: the status its row holds (``running`` until it is finished).
        host: the host that tracked it.
        pid: its tracking process, if known.
        alive: its process lives (True) or is gone (False) on this host; None: it was
            tracked on another host (or its pid is unknown), so this host cannot tell.
    """

    run_id: str
    stored_status: RunStatus
    host: str
    pid: int | None
    alive: bool | None

    @property
    def writing(self) -> bool | None:
        """Whether its process may still write the run: False once the row is final or the
        process is gone, None where that cannot be told here."""
        if self.stored_status is not RunStatus.RUNNING:
            return False
        return self.alive


def run_process(conn: sa.Connection, run_id: str) -> RunProcess | None:
    """The run's process (None: no run has exactly this id)."""
    row = conn.execute(
        sa.select(
            s.runs.c.status,
            s.runs.c.host,
            s.runs.c.pid,
            s.runs.c.started_at,
            s.runs.c.pid_created_s,
        ).where(s.runs.c.run_id == run_id)
    ).first()
    if row is None:
        return None
    alive = process_alive(
        host=str(row.host), pid=row.pid, started_at=row.started_at, pid_created_s=row.pid_created_s
    )
    return RunProcess(run_id, RunStatus(row.status), str(row.host), row.pid, alive)


def missing_samples(conn: sa.Connection, run_id: str, samples: Sequence[Sample]) -> list[Sample]:
    """The samples of ``samples`` the run does not hold yet (nor twice among themselves).

    Only the run's samples that start within the batch's span are read (through the
    samples' ``(run_id, t_start_s)`` index): a batch onto a run of millions of samples
    reads its span, never the whole run.
    """
    if not samples:
        return []
    stored = _stored_keys(conn, run_id, samples)
    missing = []
    for sample in samples:
        key = (sample.component, sample.t_start_s, sample.t_end_s)
        if key not in stored:
            stored.add(key)
            missing.append(sample)
    return missing


def add_late_samples(conn: sa.Connection, run_id: str, samples: Sequence[Sample]) -> int:
    """Write the samples the run does not hold yet; returns how many were written.

    The run's row is locked first, so concurrent replays of one batch write it once. The
    heartbeat moves up to the end of the last sample, never back: an interrupted run's
    duration (up to its last heartbeat) then covers the samples written late.

    Raises:
        RunNotFound: no run has this id.
    """
    row = conn.execute(
        sa.select(s.runs.c.started_at, s.runs.c.heartbeat_at)
        .where(s.runs.c.run_id == run_id)
        .with_for_update()
    ).first()
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r} in the store")
    missing = missing_samples(conn, run_id, samples)
    if missing:
        conn.execute(s.samples.insert(), [rows.sample_row(run_id, x) for x in missing])
    if samples:
        ended: datetime = row.started_at + timedelta(seconds=max(x.t_end_s for x in samples))
        if ended > row.heartbeat_at:
            conn.execute(
                s.runs.update().where(s.runs.c.run_id == run_id).values(heartbeat_at=ended)
            )
    return len(missing)


def _stored_keys(conn: sa.Connection, run_id: str, samples: Sequence[Sample]) -> set[_Key]:
    low = min(x.t_start_s for x in samples)
    high = max(x.t_start_s for x in samples)
    query = sa.select(s.samples.c.component, s.samples.c.t_start_s, s.samples.c.t_end_s).where(
        s.samples.c.run_id == run_id,
        s.samples.c.t_start_s >= low,
        s.samples.c.t_start_s <= high,
    )
    return {(str(r.component), float(r.t_start_s), float(r.t_end_s)) for r in conn.execute(query)}
