"""Reading runs: one run (by id or unique prefix, with its samples or a downsampled
timeline), the list of runs, a run's samples.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from wattwise._errors import ConfigError
from wattwise._records import RunResult, RunStatus, Sample
from wattwise._records.timeline import downsample
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store import _timeline as timelines
from wattwise.store._base import StoreBase, now_utc

__all__ = ["RunReads"]


class RunReads(StoreBase):
    """The read methods of :class:`~wattwise.store.RunStore`."""

    # -- reading ---------------------------------------------------------------------------

    def get_run(
        self, run_id: str, *, with_samples: bool = False, timeline_points: int | None = None
    ) -> RunResult:
        """One run, by id or unique id prefix (at least :data:`MIN_PREFIX_LEN` characters).

        A run stored as ``running`` whose process is gone reads as ``interrupted`` (the rule
        is in :mod:`wattwise.store._liveness`); a running or interrupted run is rebuilt from
        what was stored: each component's energy is the sum of its samples (gap samples
        excluded, their seconds summed in ``gap_s`` unless a recovered gap covers them), its
        uncertainty that energy times its relative uncertainty, the duration runs up to the
        last heartbeat, and the windows and gaps are those stored so far.

        Args:
            run_id: the id or a unique prefix of it.
            with_samples: also load the power timeline, every sample of it.
            timeline_points: instead, load the timeline downsampled to about this many
                points per component, each the exact sum of its samples' energies,
                however long the run: what a report draws. A finished run's kept timeline
                (see :meth:`finish_run`) is merged down; otherwise the samples are
                aggregated in the database (``_timeline.load_timeline``). Not with
                ``with_samples``.

        Raises:
            RunNotFound: no run matches.
            ConfigError: the prefix is too short or matches several runs (listed), or both
                ``with_samples`` and ``timeline_points`` are given.
        """
        if timeline_points is not None and (with_samples or timeline_points < 1):
            raise ConfigError("give with_samples or timeline_points >= 1, not both")

        def work(conn: sa.Connection) -> RunResult:
            full_id = self._resolve_id(conn, run_id)
            row = conn.execute(sa.select(s.runs).where(s.runs.c.run_id == full_id)).one()
            result = rows.load_runs(conn, [row], with_samples=with_samples, now=now_utc())[0]
            if timeline_points is None:
                return result
            saved = None
            if result.status is not RunStatus.RUNNING and result.ended_at is not None:
                saved = timelines.load_saved_timeline(conn, full_id)
            if saved is not None:
                timeline = downsample(saved, timeline_points)
            else:
                timeline = timelines.load_timeline(conn, full_id, points=timeline_points)
            return replace(result, samples=tuple(timeline))

        return self._run(work, write=False)

    def list_runs(self, *, limit: int | None = None) -> list[RunResult]:
        """Runs, newest first, without their samples.

        Args:
            limit: the most runs to return; None: all.
        """

        def work(conn: sa.Connection) -> list[RunResult]:
            query = (
                sa.select(s.runs)
                .where(rows.is_group_root())
                .order_by(s.runs.c.started_at.desc(), s.runs.c.run_id)
            )
            if limit is not None:
                query = query.limit(limit)
            found = list(conn.execute(query))
            return rows.load_runs(conn, found, with_samples=False, now=now_utc())

        return self._run(work, write=False)

    def samples(self, run_id: str) -> list[Sample]:
        """A run's power timeline, in the order it was recorded.

        Args:
            run_id: the id or a unique prefix of it.

        Raises:
            RunNotFound: no run matches.
            ConfigError: the prefix is too short or ambiguous.
        """

        def work(conn: sa.Connection) -> list[Sample]:
            full_id = self._resolve_id(conn, run_id)
            return rows.load_samples(conn, [full_id])[full_id]

        return self._run(work, write=False)
