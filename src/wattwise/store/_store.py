"""The run store: runs, their components, windows, gaps and power timeline, in SQL.

SQLite by default (one file, safe for several processes writing at once), PostgreSQL for
teams and clusters. Where the store lives is resolved in :meth:`RunStore.open`: the
argument, else the ``WATTWISE_STORE`` environment variable, else
``<user data dir>/wattwise/runs.sqlite``. A plain path is a SQLite file (a new one must end
in ``.sqlite``, ``.sqlite3``, ``.db`` or ``.db3``); ``postgresql://`` URLs use the psycopg (v3)
driver. ``RunStore.open(url, read_only=True)`` (what listing, showing, exporting and reporting
use) never creates nor writes the store: a missing one raises :class:`~wattwise.StoreNotFound`.

A run is written while it happens: :meth:`RunStore.begin_run` at the start,
:meth:`RunStore.append` every couple of seconds (samples, gaps and a heartbeat, in one
transaction), :meth:`RunStore.add_window` as phases close, :meth:`RunStore.finish_run` at the
end. A run whose row still says ``running`` but whose process is gone reads back as
``interrupted``, rebuilt from what was stored.

Layout: ``_schema`` (tables), ``_backend`` (engines, transactions, vendor errors),
``_rows`` (rows to records and back), ``_timeline`` (a long run's timeline, read short),
``_liveness`` (running or interrupted), ``_groups`` (runs with members: the host election,
the clocks, one run read back from its members), ``_replay`` (what the replay of a journal
left by a process that ended needs).

Why one module of ~730 lines (joining and reading runs with members is ``_groups.py``'s): it
is the one class, :class:`RunStore`, whose methods are the store's public API (write, read,
list, delete, studies); row-level work is in ``_rows.py``, the schema in ``_schema.py``, the
engines in ``_backend.py``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import platformdirs
import sqlalchemy as sa

from wattwise._errors import (
    ConfigError,
    RunNotFound,
    StoreError,
    StoreNeedsUpgrade,
    StoreNotFound,
    StoreUnreachable,
    StoreVersionError,
)
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
from wattwise._records.timeline import downsample
from wattwise.meters._base import Component
from wattwise.store import _replay as replay
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store import _timeline as timelines
from wattwise.store._backend import ENV_VAR, Database, mask_url
from wattwise.store._groups import Joined, join, server_now
from wattwise.store._migrate import can_upgrade, upgrade
from wattwise.store._replay import RunProcess
from wattwise.store._schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY
from wattwise.store._study import StudyRecord, StudyRun

__all__ = ["MIN_PREFIX_LEN", "RunStore", "default_store_path"]

_T = TypeVar("_T")

#: The shortest run id prefix accepted by :meth:`RunStore.get_run`.
MIN_PREFIX_LEN: Final = 4

# Serialises schema creation between PostgreSQL clients (an arbitrary 63-bit key).
_PG_SCHEMA_LOCK_KEY: Final = 0x7761_7474_7769_7365

# How many candidates an ambiguous id prefix lists.
_AMBIGUOUS_SHOWN: Final = 10


def default_store_path() -> Path:
    """The SQLite file used when no store is named: ``<user data dir>/wattwise/runs.sqlite``."""
    return Path(platformdirs.user_data_dir("wattwise")) / "runs.sqlite"


class RunStore:
    """Runs, components, windows, gaps and samples in a SQL database.

    The constructor only stores the URL; :meth:`open` (or the first call that needs the
    database) connects and creates or checks the schema. Safe to share between the threads
    of one process; several processes may write the same store at once.

    Args:
        url: a SQLAlchemy URL (``sqlite:///runs.sqlite``, ``postgresql://user@host/db``) or a
            plain path to a SQLite file.
        read_only: only read: never create the store, its directory or its tables, never
            write (a write method raises :class:`~wattwise.StoreError`).
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self._url = url
        self._read_only = read_only
        self._db: Database | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None = None, *, read_only: bool = False) -> RunStore:
        """Resolve, connect to and check a store.

        Args:
            url: the store; None: ``$WATTWISE_STORE``, else :func:`default_store_path`
                (its directory is created unless ``read_only``).
            read_only: open an existing store to read it, creating and writing nothing: a
                SQLite file through ``mode=ro`` (``immutable=1`` when no process has it
                open), PostgreSQL in read-only transactions.

        Raises:
            StoreNotFound: ``read_only`` and there is no store there (no file, or no
                wattwise tables): nothing was recorded yet.
            StoreUnreachable: the store cannot be created, opened or connected to.
            StoreVersionError: the store holds another schema version.
            ConfigError: the URL is malformed or names an unsupported database.
        """
        if url is None:
            url = os.environ.get(ENV_VAR) or str(default_store_path())
        store = cls(url, read_only=read_only)
        store._database()
        return store

    @property
    def read_only(self) -> bool:
        """Whether this store was opened only to be read."""
        return self._read_only

    @property
    def display_url(self) -> str:
        """The store's path or URL as given, with any password masked."""
        return mask_url(self._url)

    def __repr__(self) -> str:
        return f"RunStore({self.display_url!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every connection. A later call connects again."""
        with self._lock:
            if self._db is not None:
                self._db.dispose()
                self._db = None

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
        started = _aware(started_at, "started_at")

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
        beat = _aware(heartbeat_at, "heartbeat_at")

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
        started = _aware(result.started_at, "started_at")
        ended = _aware(result.ended_at, "ended_at") if result.ended_at is not None else None

        def work(conn: sa.Connection) -> None:
            values: dict[str, Any] = {
                "name": result.name,
                "status": result.status.value,
                "scope": result.scope.value,
                "started_at": started,
                "ended_at": ended,
                "heartbeat_at": ended if ended is not None else _now(),
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
                timelines.save_timeline(conn, result.run_id, result.samples, _now())

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
            result = rows.load_runs(conn, [row], with_samples=with_samples, now=_now())[0]
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
            return rows.load_runs(conn, found, with_samples=False, now=_now())

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

    # -- studies ----------------------------------------------------------------------------

    def create_study(
        self,
        *,
        study_id: str,
        kind: str,
        name: str,
        params: dict[str, Any],
        created_at: datetime | None = None,
        exist_ok: bool = False,
    ) -> None:
        """Record a new study (a group of runs made to compare something).

        Args:
            study_id: unique id.
            kind: the study's kind (``architectures``, ``sweep``...).
            name: the user's name for it.
            params: JSON-ready settings.
            created_at: aware UTC time (default: now).
            exist_ok: when a study with this id exists already, keep it (several sweep
                workers join one study); otherwise that is an error.

        Raises:
            StoreError: the id exists and ``exist_ok`` is False.
        """
        at = _aware(created_at, "created_at") if created_at is not None else _now()

        def work(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(s.studies.c.study_id).where(s.studies.c.study_id == study_id)
            ).first()
            if exists is not None:
                if exist_ok:
                    return
                raise StoreError(f"a study with id {study_id!r} exists already")
            conn.execute(
                s.studies.insert().values(
                    study_id=study_id, kind=kind, name=name, created_at=at, params=params
                )
            )

        self._run(work, write=True)

    def add_study_run(
        self, study_id: str, run_id: str, *, label: str, attributes: dict[str, Any]
    ) -> None:
        """Link a stored run to a study (again: replace its label and attributes).

        Raises:
            StoreError: the study does not exist.
            RunNotFound: the run does not exist.
        """

        def work(conn: sa.Connection) -> None:
            self._require_study(conn, study_id)
            self._require_run(conn, run_id)
            conn.execute(
                s.study_runs.delete().where(
                    (s.study_runs.c.study_id == study_id) & (s.study_runs.c.run_id == run_id)
                )
            )
            conn.execute(
                s.study_runs.insert().values(
                    study_id=study_id, run_id=run_id, label=label, attributes=attributes
                )
            )

        self._run(work, write=True)

    def finish_study(self, study_id: str, results: dict[str, Any]) -> None:
        """Write a study's results (again: replace them).

        Raises:
            StoreError: the study does not exist.
        """

        def work(conn: sa.Connection) -> None:
            self._require_study(conn, study_id)
            conn.execute(
                s.studies.update()
                .where(s.studies.c.study_id == study_id)
                .values(results=results, finished_at=_now())
            )

        self._run(work, write=True)

    def get_study(self, study_id: str) -> StudyRecord:
        """One study with its runs, by id or unique id prefix.

        Raises:
            StoreError: no study matches, or the prefix matches several.
        """

        def work(conn: sa.Connection) -> StudyRecord:
            row = conn.execute(sa.select(s.studies).where(s.studies.c.study_id == study_id)).first()
            if row is None:
                found = list(
                    conn.execute(
                        sa.select(s.studies).where(
                            s.studies.c.study_id.startswith(study_id, autoescape=True)
                        )
                    )
                )
                if not found:
                    raise StoreError(f"no study with id {study_id!r} in {self.display_url}")
                if len(found) > 1 or len(study_id) < MIN_PREFIX_LEN:
                    ids = ", ".join(str(r.study_id) for r in found[:_AMBIGUOUS_SHOWN])
                    raise ConfigError(f"study id {study_id!r} is ambiguous ({ids})")
                row = found[0]
            return self._study_from_row(conn, row)

        return self._run(work, write=False)

    def list_studies(self, *, kind: str | None = None) -> list[StudyRecord]:
        """Studies, newest first, optionally of one kind."""

        def work(conn: sa.Connection) -> list[StudyRecord]:
            query = sa.select(s.studies).order_by(s.studies.c.created_at.desc())
            if kind is not None:
                query = query.where(s.studies.c.kind == kind)
            return [self._study_from_row(conn, row) for row in conn.execute(query)]

        return self._run(work, write=False)

    def _require_study(self, conn: sa.Connection, study_id: str) -> None:
        found = conn.execute(
            sa.select(s.studies.c.study_id).where(s.studies.c.study_id == study_id)
        ).first()
        if found is None:
            raise StoreError(f"no study with id {study_id!r} in {self.display_url}")

    @staticmethod
    def _study_from_row(conn: sa.Connection, row: sa.Row[Any]) -> StudyRecord:
        links = conn.execute(
            sa.select(s.study_runs)
            .where(s.study_runs.c.study_id == row.study_id)
            .order_by(s.study_runs.c.id)
        )
        return StudyRecord(
            study_id=str(row.study_id),
            kind=str(row.kind),
            name=str(row.name),
            created_at=row.created_at,
            finished_at=row.finished_at,
            params=dict(row.params),
            results=dict(row.results) if row.results is not None else None,
            runs=tuple(StudyRun(str(r.run_id), str(r.label), dict(r.attributes)) for r in links),
        )

    # -- connection and schema -------------------------------------------------------------

    def _database(self) -> Database:
        with self._lock:
            if self._db is None:
                db = Database(self._url, read_only=self._read_only)
                try:
                    _ensure_schema(db)
                except BaseException:
                    db.dispose()
                    raise
                self._db = db
            return self._db

    def _run(self, work: Callable[[sa.Connection], _T], *, write: bool) -> _T:
        return self._database().run(work, write=write)

    # -- ids ---------------------------------------------------------------------------------

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no run with id {run_id!r} in the store {self.display_url}")

    def _require_run(self, conn: sa.Connection, run_id: str) -> None:
        if not rows.run_exists(conn, run_id):
            raise self._not_found(run_id)

    def _resolve_id(self, conn: sa.Connection, run_id: str) -> str:
        if rows.run_exists(conn, run_id):
            return run_id
        if len(run_id) < MIN_PREFIX_LEN:
            raise ConfigError(
                f"run id {run_id!r} is too short: give at least {MIN_PREFIX_LEN} characters"
            )
        found = list(
            conn.execute(
                sa.select(s.runs.c.run_id, s.runs.c.name, s.runs.c.started_at)
                .where(s.runs.c.run_id.startswith(run_id, autoescape=True))
                .order_by(s.runs.c.started_at.desc())
                .limit(_AMBIGUOUS_SHOWN + 1)
            )
        )
        if not found:
            raise self._not_found(run_id)
        if len(found) == 1:
            return str(found[0].run_id)
        listed = ", ".join(
            f"{r.run_id} ({r.name}, {r.started_at:%Y-%m-%d %H:%M:%S} UTC)"
            for r in found[:_AMBIGUOUS_SHOWN]
        )
        more = " and more" if len(found) > _AMBIGUOUS_SHOWN else ""
        raise ConfigError(
            f"run id prefix {run_id!r} is ambiguous, it matches {listed}{more}: "
            f"give more characters"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value


def _ensure_schema(db: Database) -> None:
    """Create the tables in an empty store (unless read-only), or check a filled one's version."""
    try:
        found = db.run(rows.read_version, write=False)
        if found is None and db.read_only:
            db.run(lambda conn: _refuse_foreign_tables(db, conn), write=False)
            raise StoreNotFound(
                f"no run store at {db.display_url} (it holds no wattwise tables): nothing "
                f"recorded there yet"
            )
        if found is None:
            found = db.run(lambda conn: _create_schema(db, conn), write=True)
    except (StoreVersionError, StoreUnreachable, StoreNotFound):
        raise
    except StoreError as exc:
        # Whatever fails while opening (a file that is not a database, say) means the store
        # cannot be used.
        raise StoreUnreachable(str(exc)) from exc
    if found < SCHEMA_VERSION and can_upgrade(found) and db.read_only:
        raise StoreNeedsUpgrade(
            f"run store {db.display_url} has schema version {found}, from an older wattwise: "
            f"upgrade it in place with `wattwise runs upgrade` (every run is kept), or point "
            f"{ENV_VAR} at another store"
        )
    if found < SCHEMA_VERSION and can_upgrade(found):
        found = db.run(lambda conn: _upgrade_schema(db, conn), write=True)
    if found != SCHEMA_VERSION:
        if found > SCHEMA_VERSION:
            advice = "upgrade wattwise (pip install -U wattwise) to use it"
        else:
            advice = "it was written by an older wattwise; open it with that version"
        raise StoreVersionError(
            f"run store {db.display_url} has schema version {found}, this wattwise expects "
            f"{SCHEMA_VERSION}: {advice}, or point {ENV_VAR} at another store"
        )


def _upgrade_schema(db: Database, conn: sa.Connection) -> int:
    """Upgrade an older store in place (``_migrate.py``); the version it then holds."""
    if not db.is_sqlite:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_KEY)))
    found = rows.read_version(conn)
    if found is None:
        return _create_schema(db, conn)
    if found >= SCHEMA_VERSION:
        return found  # another process upgraded it first
    return upgrade(conn, found)


def _create_schema(db: Database, conn: sa.Connection) -> int:
    if not db.is_sqlite:
        # DDL is transactional in PostgreSQL; this lock makes concurrent first opens wait
        # for one another instead of racing on CREATE TABLE. (SQLite: BEGIN IMMEDIATE.)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_KEY)))
    found = rows.read_version(conn)
    if found is not None:
        return found
    _refuse_foreign_tables(db, conn)
    s.metadata.create_all(conn)
    conn.execute(s.meta.insert().values(key=SCHEMA_VERSION_KEY, value=str(SCHEMA_VERSION)))
    return SCHEMA_VERSION


def _refuse_foreign_tables(db: Database, conn: sa.Connection) -> None:
    """Refuse a store with wattwise tables but no schema version (not written by us)."""
    inspector = sa.inspect(conn)
    present = [t.name for t in s.metadata.sorted_tables if inspector.has_table(t.name)]
    if present:
        raise StoreVersionError(
            f"run store {db.display_url} has wattwise tables ({', '.join(present)}) but no "
            f"schema version: it was not written by this wattwise; point {ENV_VAR} at "
            f"another store"
        )
