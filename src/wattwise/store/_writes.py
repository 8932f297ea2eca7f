"""Writing runs: a run's start (alone or as a member of a run), its samples, gaps and
windows as it goes, its final figures and carbon, and the late samples of a journal left
by a process that ended (``_replay.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wattwise._errors import ConfigError, StoreError
from wattwise._records import (
    CarbonFigures,
    Gap,
    Member,
    RunAllocation,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.meters._base import Component
from wattwise.store import _replay as replay
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store import _timeline as timelines
from wattwise.store._base import StoreBase, aware, now_utc
from wattwise.store._groups import Joined, join, server_now
from wattwise.store._replay import RunProcess

__all__ = ["RunWrites"]


class RunWrites(StoreBase):
    """The write methods of :class:`~wattwise.store.RunStore`."""

    # -- writing ---------------------------------------------------------------------------

    def begin_run(
        self,
        *,
        run_id: str,
        name: str,
        scope: Scope,
        started_at: datetime,
        host: str,
        pid: int,
        command: tuple[str, ...] | None,
        components: Sequence[Component],
        baseline_power_w: float | None,
        allocation: RunAllocation | None = None,
    ) -> None:
        """Record a new run as ``running``, with the components known at its start.

        Args:
            run_id: the run's unique id.
            name: the user's name for the run.
            scope: machine or process.
            started_at: timezone-aware start time.
            host: the host name (``socket.gethostname()``; used to tell a dead process).
            pid: the id of the tracking process.
            command: the tracked command line, for ``wattwise run``.
            components: the components the meters reported at start.
            baseline_power_w: the idle power measured before the run, in W, or None.
            allocation: what the run was given and its machine's size, or None.

        Raises:
            StoreError: a run with this id exists already.
        """
        started = aware(started_at, "started_at")

        def work(conn: sa.Connection) -> None:
            if rows.run_exists(conn, run_id):
                raise StoreError(f"run {run_id} already exists in the store {self.display_url}")
            conn.execute(
                s.runs.insert().values(
                    run_id=run_id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    scope=scope.value,
                    started_at=started,
                    heartbeat_at=started,
                    host=host,
                    pid=pid,
                    command=list(command) if command is not None else None,
                    baseline_power_w=baseline_power_w,
                    # A run of its own: the first (and so far only) member of its group.
                    group_id=run_id,
                    role="host",
                    claims_host=host,
                    anchor_at=server_now(conn),
                    offset_s=0.0,
                    server_clock=False,
                    allocation=rows.allocation_value(allocation),
                )
            )
            rows.insert_components(conn, run_id, components)

        self._run(work, write=True)

    def join_run(
        self,
        *,
        group_id: str,
        run_id: str,
        name: str,
        scope: Scope,
        member: Member,
        pid_created_s: float | None,
        command: tuple[str, ...] | None,
        components: Sequence[Component],
        baseline_power_w: float | None,
        allocation: RunAllocation | None = None,
    ) -> Joined:
        """Join the run ``group_id`` as a member (creating it when it does not exist yet).

        In one transaction: the member's row is written as ``running`` (its id ``run_id``,
        or ``group_id`` when it creates the run), and it claims its host when no live
        member holds it: it then reads this host's meters (role ``host``, in ``scope``);
        otherwise it records its process share (role ``rank``, process scope). See
        :mod:`wattwise.store._groups` for the election and the clocks.
        ``allocation`` (what the member was given, its machine's size) is kept on its row.

        Raises:
            GroupClosed: every member of that run has stopped.
            StoreError: ``group_id`` is a member of another run.
        """

        def work(conn: sa.Connection) -> Joined:
            joined = join(
                conn,
                group_id=group_id,
                run_id=run_id,
                name=name,
                scope=scope,
                member=member,
                pid_created_s=pid_created_s,
                command=command,
                baseline_power_w=baseline_power_w,
            )
            rows.insert_components(conn, joined.run_id, components)
            if allocation is not None:
                conn.execute(
                    s.runs.update()
                    .where(s.runs.c.run_id == joined.run_id)
                    .values(allocation=rows.allocation_value(allocation))
                )
            return joined

        return self._run(work, write=True)

    def add_components(self, run_id: str, components: Sequence[Component]) -> None:
        """Record components found after the run began; already known names are skipped.

        Raises:
            RunNotFound: no run has this id.
        """

        def work(conn: sa.Connection) -> None:
            self._require_run(conn, run_id)
            rows.insert_components(conn, run_id, components)

        self._run(work, write=True)

    def append(
        self,
        run_id: str,
        *,
        samples: Sequence[Sample],
        gaps: Sequence[Gap],
        heartbeat_at: datetime,
    ) -> None:
        """Add timeline samples and gaps and move the heartbeat, in one transaction.

        Samples are appended as given (send each once). A gap is identified by its component
        and start: sending it again (with a later end, or now recovered) updates it.

        Args:
            run_id: the run.
            samples: new timeline points (may be empty: a heartbeat only).
            gaps: gaps closed or changed since the previous call.
            heartbeat_at: timezone-aware time of this call.

        Raises:
            RunNotFound: no run has this id.
        """
        beat = aware(heartbeat_at, "heartbeat_at")

        def work(conn: sa.Connection) -> None:
            # A member that joined a run beats on the server's clock (its host's may be off).
            on_server = conn.execute(
                sa.select(s.runs.c.server_clock).where(s.runs.c.run_id == run_id)
            ).scalar_one_or_none()
            updated = conn.execute(
                s.runs.update()
                .where(s.runs.c.run_id == run_id)
                .values(heartbeat_at=server_now(conn) if on_server else beat)
            )
            if updated.rowcount == 0:
                raise self._not_found(run_id)
            if samples:
                conn.execute(s.samples.insert(), [rows.sample_row(run_id, x) for x in samples])
            if gaps:
                rows.upsert_gaps(conn, run_id, gaps)

        self._run(work, write=True)

    def add_window(self, run_id: str, window: WindowResult) -> None:
        """Record a closed window. A window is identified by its path and start: recording
        it again replaces it.

        Raises:
            RunNotFound: no run has this id.
        """

        def work(conn: sa.Connection) -> None:
            self._require_run(conn, run_id)
            rows.upsert_windows(conn, run_id, [window])

        self._run(work, write=True)

    def finish_run(self, result: RunResult) -> None:
        """Record a run's final figures; idempotent.

        Sets the status, end, duration, totals, exit code and per-component energies, and
        writes the windows, gaps and samples of ``result`` not stored yet (identified by
        path and start, component and start, component and interval). When the run has
        more stored samples than ``result`` holds (a tracker's result: a bounded,
        downsampled timeline of a streamed run), that timeline is kept beside them for
        reports (``_timeline.save_timeline``) and no sample is added. Carbon, command and
        allocation are kept when ``result`` has none. Stores the whole run when
        :meth:`begin_run` was never called for it.

        Raises:
            ConfigError: ``result.status`` is ``running``.
        """
        if result.status is RunStatus.RUNNING:
            raise ConfigError(f"finish_run needs a final status, run {result.run_id} is running")
        started = aware(result.started_at, "started_at")
        ended = aware(result.ended_at, "ended_at") if result.ended_at is not None else None

        def work(conn: sa.Connection) -> None:
            values: dict[str, Any] = {
                "name": result.name,
                "status": result.status.value,
                "scope": result.scope.value,
                "started_at": started,
                "ended_at": ended,
                "heartbeat_at": ended if ended is not None else now_utc(),
                "host": result.host,
                "pid": result.pid,
                "exit_code": result.exit_code,
                "baseline_power_w": result.baseline_power_w,
                "duration_s": result.duration_s,
                "energy_j": result.energy_j,
                "uncertainty_j": result.uncertainty_j,
                "net_energy_j": result.net_energy_j,
            }
            if result.command is not None:
                values["command"] = list(result.command)
            rows.keep_server_times(conn, result, values, server_now(conn))
            if result.carbon is not None:
                values.update(rows.carbon_values(result.carbon))
            if result.allocation is not None:
                values["allocation"] = rows.allocation_value(result.allocation)
            if rows.run_exists(conn, result.run_id):
                conn.execute(
                    s.runs.update().where(s.runs.c.run_id == result.run_id).values(**values)
                )
            else:
                conn.execute(s.runs.insert().values(run_id=result.run_id, **values))
            rows.finish_components(conn, result.run_id, result.components)
            rows.upsert_windows(conn, result.run_id, result.windows, reorder=True)
            rows.upsert_gaps(conn, result.run_id, result.gaps, reorder=True)
            if rows.insert_missing_samples(conn, result.run_id, result.samples):
                timelines.save_timeline(conn, result.run_id, result.samples, now_utc())

        self._run(work, write=True)

    def set_carbon(self, run_id: str, carbon: CarbonFigures) -> None:
        """Record (or replace) a run's emissions.

        Raises:
            RunNotFound: no run has this id.
        """

        def work(conn: sa.Connection) -> None:
            updated = conn.execute(
                s.runs.update()
                .where(s.runs.c.run_id == run_id)
                .values(**rows.carbon_values(carbon))
            )
            if updated.rowcount == 0:
                raise self._not_found(run_id)

        self._run(work, write=True)

    # -- a journal left by a process that ended (store/_replay.py) ------------------------

    def run_process(self, run_id: str) -> RunProcess | None:
        """Whether the run's tracking process may still write it (None: no run has exactly
        this id); the rule is :mod:`wattwise.store._liveness`'s."""
        return self._run(lambda conn: replay.run_process(conn, run_id), write=False)

    def missing_samples(self, run_id: str, samples: Sequence[Sample]) -> list[Sample]:
        """The samples the run does not hold yet (same component and interval)."""
        return self._run(lambda conn: replay.missing_samples(conn, run_id, samples), write=False)

    def add_late_samples(self, run_id: str, samples: Sequence[Sample]) -> int:
        """Write, in one transaction, the samples the run does not hold yet, and move its
        heartbeat up to their end (never back); returns how many were written.

        Raises:
            RunNotFound: no run has this id.
        """
        return self._run(lambda conn: replay.add_late_samples(conn, run_id, samples), write=True)
