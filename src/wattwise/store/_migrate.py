"""Upgrading a store written by an older wattwise, in place, in one transaction.

A store holding an older :data:`~wattwise.store._schema.SCHEMA_VERSION` is upgraded when it
is opened for writing (a read-only open never writes: it asks for ``wattwise runs
upgrade``). Each step takes the tables from one version to the next and only adds (columns,
indexes; 2 -> 3 also replaces an index): no recorded run, sample or study is rewritten, so a
run recorded before reads back the same.

* 1 -> 2 (runs with members, docs/store.md "Runs with members"): the member columns on
  ``wattwise_runs``, all NULL on the runs already there (a run of one process), the index
  on ``group_id`` and the one-host-per-group unique index.
* 2 -> 3 (a run's allocation, docs/store.md "Schema"): the ``allocation`` column on
  ``wattwise_runs``, NULL on the runs already there (their allocation was not recorded);
  and the samples' index on ``run_id`` alone replaced by one on ``(run_id, t_start_s)``
  (the only step that drops something: an index, rebuilt from the rows, no row changes).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from wattwise.store import _schema as s

__all__ = ["can_upgrade", "upgrade"]

#: The member columns version 2 added to ``wattwise_runs``.
_V2_RUN_COLUMNS = (
    "group_id",
    "role",
    "claims_host",
    "rank",
    "local_rank",
    "world_size",
    "anchor_at",
    "offset_s",
    "server_clock",
    "pid_created_s",
)


def _v1_to_v2(conn: sa.Connection) -> None:
    runs = s.runs.name
    for name in _V2_RUN_COLUMNS:
        column = s.runs.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        ref = f" REFERENCES {runs} (run_id) ON DELETE CASCADE" if name == "group_id" else ""
        conn.execute(sa.text(f'ALTER TABLE {runs} ADD COLUMN "{name}" {kind}{ref}'))
    conn.execute(sa.text(f"CREATE INDEX ix_{runs}_group_id ON {runs} (group_id)"))
    # A unique index: what the new schema's constraint enforces, and what ALTER TABLE can
    # add on SQLite too.
    conn.execute(
        sa.text(f"CREATE UNIQUE INDEX uq_{runs}_group_host ON {runs} (group_id, claims_host)")
    )


def _v2_to_v3(conn: sa.Connection) -> None:
    kind = s.runs.c.allocation.type.compile(dialect=conn.dialect)
    conn.execute(sa.text(f'ALTER TABLE {s.runs.name} ADD COLUMN "allocation" {kind}'))
    samples = s.samples.name
    conn.execute(sa.text(f"CREATE INDEX {s.SAMPLES_INDEX} ON {samples} (run_id, t_start_s)"))
    conn.execute(sa.text(f"DROP INDEX IF EXISTS ix_{samples}_run_id"))


#: The step from each version to the next.
_STEPS: dict[int, Callable[[sa.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def can_upgrade(found: int) -> bool:
    """Whether a store of version ``found`` (older than this one) has a way up to it."""
    return all(v in _STEPS for v in range(found, s.SCHEMA_VERSION))


def upgrade(conn: sa.Connection, found: int) -> int:
    """Upgrade the tables from version ``found`` to the current one; the version reached.

    The caller holds the write transaction (and, on PostgreSQL, the schema lock).
    """
    version = found
    while version < s.SCHEMA_VERSION and version in _STEPS:
        _STEPS[version](conn)
        version += 1
    conn.execute(
        s.meta.update().where(s.meta.c.key == s.SCHEMA_VERSION_KEY).values(value=str(version))
    )
    return version
