"""Studies: groups of stored runs made to compare something, with their parameters and
results (JSON documents whose shape belongs to the study's kind).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wattwise._errors import ConfigError, StoreError
from wattwise.store import _schema as s
from wattwise.store._base import AMBIGUOUS_SHOWN, MIN_PREFIX_LEN, StoreBase, aware, now_utc
from wattwise.store._study import StudyRecord, StudyRun

__all__ = ["StudyMethods"]


class StudyMethods(StoreBase):
    """The study methods of :class:`~wattwise.store.RunStore`."""

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
        at = aware(created_at, "created_at") if created_at is not None else now_utc()

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
                .values(results=results, finished_at=now_utc())
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
                    ids = ", ".join(str(r.study_id) for r in found[:AMBIGUOUS_SHOWN])
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
