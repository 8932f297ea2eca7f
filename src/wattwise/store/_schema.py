"""The tables of the run store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Every table name starts with ``wattwise_`` so that a PostgreSQL database shared with other
tools (an Optuna study, say) never collides with ours. Units are in the column names, as in
the records: J, W, s. Timestamps are stored as naive UTC and come back timezone-aware.

Bump :data:`SCHEMA_VERSION` on any change a previous wattwise could not read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = [
    "SAMPLES_INDEX",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "UTCDateTime",
    "components",
    "gaps",
    "meta",
    "metadata",
    "runs",
    "samples",
    "studies",
    "study_runs",
    "windows",
]

#: Version of the tables below; a store holding another version is refused.
SCHEMA_VERSION = 3

#: The key of the schema version in the meta table.
SCHEMA_VERSION_KEY = "schema_version"

#: The index of a run's samples by time (version 3): ``(run_id, t_start_s)``.
SAMPLES_INDEX = "ix_wattwise_samples_run_id_t_start_s"


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, stored as naive UTC on every backend.

    SQLite has no time zones; storing naive UTC everywhere keeps both backends identical.
    Callers must hand in aware datetimes: the store checks that before binding.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData()


def _run_fk(*, index: bool = True) -> sa.Column[str]:
    return sa.Column(
        "run_id",
        sa.String(64),
        sa.ForeignKey("wattwise_runs.run_id", ondelete="CASCADE"),
        nullable=False,
        index=index,
    )


meta = sa.Table(
    "wattwise_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

runs = sa.Table(
    "wattwise_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # What the tracking process last wrote; ``running`` is turned into ``interrupted`` on read
    # when the process is gone (see the store module).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False, index=True),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("command", sa.JSON),
    sa.Column("exit_code", sa.Integer),
    sa.Column("baseline_power_w", sa.Double),
    # Totals: NULL until the run is finished (reconstructed from samples before that).
    sa.Column("duration_s", sa.Double),
    sa.Column("energy_j", sa.Double),
    sa.Column("uncertainty_j", sa.Double),
    sa.Column("net_energy_j", sa.Double),
    # Carbon: all NULL until computed.
    sa.Column("emissions_g", sa.Double),
    sa.Column("intensity_g_per_kwh", sa.Double),
    sa.Column("zone", sa.Text),
    sa.Column("pue", sa.Double),
    sa.Column("intensity_source", sa.Text),
    # Members (version 2). Every run is a member of a group: its own (group_id = run_id) or,
    # for a process that joined a run, that run's (docs/store.md, "Runs with members").
    sa.Column(
        "group_id",
        sa.String(64),
        sa.ForeignKey("wattwise_runs.run_id", ondelete="CASCADE"),
        index=True,
    ),
    sa.Column("role", sa.String(16)),
    # The host this member reads the meters of: set for the one ``host`` member per host of
    # a group, NULL for the others; unique per group, so the first to claim a host wins.
    sa.Column("claims_host", sa.Text),
    sa.Column("rank", sa.Integer),
    sa.Column("local_rank", sa.Integer),
    sa.Column("world_size", sa.Integer),
    # The store server's clock when the member started, and its start on the group's
    # timeline (s after the group's anchor): the timeline never trusts a host's clock.
    sa.Column("anchor_at", UTCDateTime),
    sa.Column("offset_s", sa.Double),
    # Joined members' heartbeats, start and end are the server's clock (not the host's).
    sa.Column("server_clock", sa.Boolean),
    # The process's create time on its host (its own clock), to tell a reused pid.
    sa.Column("pid_created_s", sa.Double),
    # What the run was given and its machine's size, recorded at its start (version 3): a
    # RunAllocation's to_dict(), NULL for runs recorded before. One JSON document, not
    # columns: it is written once and read whole, never filtered or summed in SQL, and a
    # field added later needs no schema change (readers ignore keys they do not know).
    sa.Column("allocation", sa.JSON),
    sa.UniqueConstraint("group_id", "claims_host", name="uq_wattwise_runs_group_host"),
)

components = sa.Table(
    "wattwise_components",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("sensor", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("counted", sa.Boolean, nullable=False),
    sa.Column("device", sa.Text),
    sa.Column("relative_uncertainty", sa.Double, nullable=False),
    # Final figures: NULL until the run is finished.
    sa.Column("energy_j", sa.Double),
    sa.Column("uncertainty_j", sa.Double),
    sa.Column("gap_s", sa.Double),
    sa.UniqueConstraint("run_id", "name", name="uq_wattwise_components_run_name"),
)

windows = sa.Table(
    "wattwise_windows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("start_s", sa.Double, nullable=False),
    sa.Column("end_s", sa.Double, nullable=False),
    sa.Column("energy_j", sa.Double, nullable=False),
    sa.Column("uncertainty_j", sa.Double, nullable=False),
    # Per-component energies inside the window: a list of objects (see the store module).
    sa.Column("components", sa.JSON, nullable=False),
)

samples = sa.Table(
    "wattwise_samples",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    # Indexed with t_start_s below, not alone: one index serves both a run's samples and
    # those in a span of its time (the replay of a journal), so a batch reads its span, not
    # the whole run.
    _run_fk(index=False),
    sa.Column("component", sa.String(255), nullable=False),
    sa.Column("t_start_s", sa.Double, nullable=False),
    sa.Column("t_end_s", sa.Double, nullable=False),
    # NULL: the sensor could not be read over this interval (a gap, never zero).
    sa.Column("energy_j", sa.Double),
    sa.Column("note", sa.Text),
    # Version 3; versions 1 and 2 had ``ix_wattwise_samples_run_id`` on run_id alone.
    sa.Index(SAMPLES_INDEX, "run_id", "t_start_s"),
)

gaps = sa.Table(
    "wattwise_gaps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _run_fk(),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("component", sa.String(255), nullable=False),
    sa.Column("start_s", sa.Double, nullable=False),
    sa.Column("end_s", sa.Double, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("recovered", sa.Boolean, nullable=False),
)

# A study groups runs made to compare something (architectures, environments, a sweep of
# hyperparameters, batching policies). Its parameters and results are JSON documents whose
# shape belongs to the study's kind; the store only keeps them.
studies = sa.Table(
    "wattwise_studies",
    metadata,
    sa.Column("study_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("results", sa.JSON),
)

study_runs = sa.Table(
    "wattwise_study_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "study_id",
        sa.String(64),
        sa.ForeignKey("wattwise_studies.study_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "run_id",
        sa.String(64),
        sa.ForeignKey("wattwise_runs.run_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.UniqueConstraint("study_id", "run_id", name="uq_wattwise_study_runs"),
)
