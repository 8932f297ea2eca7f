"""A store written by an older wattwise is upgraded in place, keeping every run.

``tests/data/store-v1.sqlite`` is a real store written by wattwise at schema version 1
(commit 240a70a, ``wattwise run --name "v1 run" -- sleep 1.5``): one completed run of two
estimated components and 18 samples.

``tests/data/store-v2.sqlite`` is a real store written by wattwise at schema version 2
(commit 1b80d0a): ``wattwise run --name "v2 run" -- sleep 1.5``, then ``wattwise run
--name "v2 group" -- python ranks.py``, where ranks.py starts two processes that each
``wattwise.track("rank")`` for 1.5 s with ``RANK=0/1 LOCAL_RANK=0 WORLD_SIZE=2``, rank 1
with ``WATTWISE_HOST=node-b``: a run with three members on two hosts (``wattwise run`` the
host member of this one, rank 0 a rank member, rank 1 the host member of node-b).
``tests/data/store-v2-runs.json`` is what wattwise 1b80d0a read back from it
(``[store.get_run(r.run_id).to_dict() for r in store.list_runs()]``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests._cli import one_error_line, wattwise

from wattwise import StoreNeedsUpgrade, StoreVersionError
from wattwise._records import Member, MemberRole
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import SCHEMA_VERSION, RunStore
from wattwise.store import _schema as s
from wattwise.testing import FakeClock
from wattwise.tracking import Tracker

DATA = Path(__file__).parent / "data"
V1 = DATA / "store-v1.sqlite"
V1_RUN = "03fae6132c22407cacf30ccb10b33b4d"
V2 = DATA / "store-v2.sqlite"
V2_RUN = "1f9136ac61224c198c419c1eaad13043"
V2_GROUP = "dda73f51995244bf8768d6dcaa535c2b"


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "runs.sqlite"
    shutil.copy(V1, path)
    return path


@pytest.fixture
def v2_store(tmp_path: Path) -> Path:
    path = tmp_path / "runs-v2.sqlite"
    shutil.copy(V2, path)
    return path


def _without_allocation(run: dict[str, Any]) -> dict[str, Any]:
    """The run's JSON less the allocation objects (which must be null: not recorded)."""
    assert run.pop("allocation") is None
    for member in run["members"]:
        assert member.pop("allocation") is None
    return run


def _version(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select value from wattwise_meta")).scalar_one())
    finally:
        engine.dispose()


def _sample_indexes(url: str) -> dict[str, tuple[str, ...]]:
    """The indexes on wattwise_samples, by name, with their columns."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn).get_indexes(s.samples.name)
    finally:
        engine.dispose()
    return {str(i["name"]): tuple(str(c) for c in i["column_names"]) for i in found}


def _replay() -> ReplayMeter:
    cpu = Component("cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "cpu-model"))
    return ReplayMeter([cpu], [TraceInterval("cpu", 0.0, 3600.0, 36000.0)])  # 10 W


def test_a_read_only_open_refuses_an_older_store_and_writes_nothing(old_store: Path) -> None:
    before = old_store.read_bytes()
    with pytest.raises(StoreNeedsUpgrade, match="wattwise runs upgrade"):
        RunStore.open(str(old_store), read_only=True)
    assert old_store.read_bytes() == before


def test_opening_for_writing_upgrades_it_and_the_old_run_reads_back(old_store: Path) -> None:
    assert _version(old_store) == 1
    with RunStore.open(str(old_store)) as store:
        run = store.get_run(V1_RUN, with_samples=True)
        assert run.name == "v1 run" and run.status.value == "completed"
        assert [c.name for c in run.components] == ["cpu", "ram"]
        assert len(run.samples) == 18 and run.members == ()
        assert run.energy_j == pytest.approx(4.179871542646307)
        assert run.allocation is None  # not recorded by that wattwise
        assert [r.run_id for r in store.list_runs()] == [V1_RUN]
    assert _version(old_store) == SCHEMA_VERSION == 3


def test_a_version_2_store_is_refused_read_only_and_left_unwritten(v2_store: Path) -> None:
    before = v2_store.read_bytes()
    with pytest.raises(StoreNeedsUpgrade, match="wattwise runs upgrade"):
        RunStore.open(str(v2_store), read_only=True)
    assert v2_store.read_bytes() == before and _version(v2_store) == 2


def test_a_version_2_store_is_upgraded_and_its_runs_read_back_unchanged(v2_store: Path) -> None:
    expected = json.loads((DATA / "store-v2-runs.json").read_text(encoding="utf-8"))
    with RunStore.open(str(v2_store)) as store:
        runs = [store.get_run(r.run_id) for r in store.list_runs()]
    assert _version(v2_store) == SCHEMA_VERSION == 3
    assert [r.run_id for r in runs] == [V2_GROUP, V2_RUN]
    assert all(r.allocation is None for r in runs)
    assert [_without_allocation(r.to_dict()) for r in runs] == expected
    group = runs[0]
    assert [m.role.value for m in group.members] == ["host", "rank", "host"]
    assert {h.host for h in group.hosts} == {"vm", "node-b"}
    engine = sa.create_engine(f"sqlite:///{v2_store}")
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM wattwise_runs")).scalar_one()
        unset = conn.execute(
            sa.text("SELECT count(*) FROM wattwise_runs WHERE allocation IS NULL")
        ).scalar_one()
    engine.dispose()
    assert stored == unset == 4  # the column only added, NULL on every old row


def test_an_upgraded_version_2_store_records_the_allocation_of_new_runs(v2_store: Path) -> None:
    with RunStore.open(str(v2_store)) as store:
        clock = FakeClock()
        tracker = Tracker(
            "after", meters=[_replay()], store=store, interval_s=0.5, clock=clock, emissions=False
        )
        tracker.start()
        clock.advance(1.0)
        result = tracker.stop()
        new = store.get_run(tracker.run_id)
        old = store.get_run(V2_RUN)
    assert result.allocation is not None and new.allocation == result.allocation
    assert new.allocation.machine_logical_cpus >= 1 and new.allocation.cpus > 0
    assert old.allocation is None


def test_an_upgraded_store_records_runs_with_members(old_store: Path) -> None:
    with RunStore.open(str(old_store)) as store:
        clock = FakeClock()
        trackers = [
            Tracker(
                "job",
                meters=[_replay()],
                store=store,
                interval_s=0.5,
                clock=clock,
                emissions=False,
                join="job-after-upgrade",
                member=Member(host="h", pid=1000 + rank, rank=rank, local_rank=rank, world_size=2),
            )
            for rank in range(2)
        ]
        for t in trackers:
            t.start()
        assert [t.role for t in trackers] == [MemberRole.HOST, MemberRole.RANK]
        # while running, each member's row already holds what it was given (written at join)
        live = store.get_run("job-after-upgrade")
        assert len(live.members) == 2 and all(m.allocation is not None for m in live.members)
        clock.advance(2.0)
        for t in trackers:
            t.stop()
        run = store.get_run("job-after-upgrade")
        assert len(run.members) == 2 and run.energy_j == pytest.approx(20.0, rel=1e-6)
        # and still once they have finished
        assert all(m.allocation is not None for m in run.members)
        assert run.allocation == run.members[0].allocation
        # the one-host-per-run rule holds on the upgraded table too
        engine = sa.create_engine(f"sqlite:///{old_store}")
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                s.runs.update()
                .where(s.runs.c.group_id == "job-after-upgrade", s.runs.c.claims_host.is_(None))
                .values(claims_host="h")
            )
        engine.dispose()
        assert sorted(r.run_id for r in store.list_runs()) == sorted([V1_RUN, "job-after-upgrade"])


@pytest.mark.slow
def test_the_upgrade_command(old_store: Path, child_env: dict[str, str]) -> None:
    env = dict(child_env, WATTWISE_STORE=str(old_store))
    listed = wattwise(env, "runs", "list")
    assert listed.returncode == 2
    assert "wattwise runs upgrade" in one_error_line(listed)
    done = wattwise(env, "runs", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "upgraded" in done.stdout and "schema version 3" in done.stdout
    again = wattwise(env, "runs", "upgrade")
    assert again.returncode == 0 and "already" in again.stdout
    shown = wattwise(env, "runs", "show", V1_RUN[:8])
    assert shown.returncode == 0 and "v1 run" in shown.stdout
    none = old_store.parent / "none.sqlite"
    missing = wattwise(dict(env, WATTWISE_STORE=str(none)), "runs", "upgrade")
    assert missing.returncode == 0 and "nothing to upgrade" in missing.stdout
    assert not none.exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_version_1_postgresql_store_is_upgraded(postgres_db_url: str) -> None:
    # A version-1 database: today's tables less what versions 2 and 3 added, at version 1.
    with RunStore.open(postgres_db_url):
        pass
    fresh = _sample_indexes(postgres_db_url)
    engine = sa.create_engine(postgres_db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        _with_version_2_samples_index(conn)
        for name in ("group_id", "role", "claims_host", "rank", "local_rank", "world_size",
                     "anchor_at", "offset_s", "server_clock", "pid_created_s",
                     "allocation"):  # fmt: skip
            conn.execute(sa.text(f'ALTER TABLE wattwise_runs DROP COLUMN "{name}"'))
        conn.execute(sa.text("UPDATE wattwise_meta SET value = '1'"))
        conn.execute(
            sa.text(
                "INSERT INTO wattwise_runs (run_id, name, status, scope, started_at, "
                "heartbeat_at, host, pid, duration_s, energy_j, uncertainty_j) VALUES ('old', "
                "'old run', 'completed', 'machine', now(), now(), 'h', 1, 1.0, 2.0, 0.1)"
            )
        )
    with pytest.raises(StoreNeedsUpgrade):
        RunStore.open(postgres_db_url, read_only=True)
    with RunStore.open(postgres_db_url) as store:
        assert [r.run_id for r in store.list_runs()] == ["old"]
        assert store.get_run("old").name == "old run"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM wattwise_meta")).scalar_one() == "3"
    engine.dispose()
    assert _sample_indexes(postgres_db_url) == fresh == {s.SAMPLES_INDEX: ("run_id", "t_start_s")}


def _with_version_2_samples_index(conn: sa.Connection) -> None:
    """Put back the samples index of versions 1 and 2 (on run_id alone)."""
    conn.execute(sa.text(f"DROP INDEX {s.SAMPLES_INDEX}"))
    conn.execute(sa.text("CREATE INDEX ix_wattwise_samples_run_id ON wattwise_samples (run_id)"))


@pytest.mark.slow
@pytest.mark.postgres
def test_a_version_2_postgresql_store_is_upgraded(postgres_db_url: str) -> None:
    # A version-2 database: today's tables less what version 3 added, at version 2, with a
    # run of one process and a run with a member, as version 2 wrote them.
    with RunStore.open(postgres_db_url):
        pass
    fresh = _sample_indexes(postgres_db_url)
    engine = sa.create_engine(postgres_db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        _with_version_2_samples_index(conn)
        conn.execute(sa.text('ALTER TABLE wattwise_runs DROP COLUMN "allocation"'))
        conn.execute(sa.text("UPDATE wattwise_meta SET value = '2'"))
        for run_id, group, role, host in (
            ("solo", "solo", "host", "h"),
            ("job", "job", "host", "h"),
            ("job-rank", "job", "rank", None),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO wattwise_runs (run_id, name, status, scope, started_at, "
                    "heartbeat_at, ended_at, host, pid, duration_s, energy_j, uncertainty_j, "
                    "group_id, role, claims_host, offset_s) VALUES (:id, :name, 'completed', "
                    "'machine', now(), now(), now(), 'h', 1, 1.0, 2.0, 0.1, :group, :role, "
                    ":host, 0.0)"
                ),
                {"id": run_id, "name": run_id, "group": group, "role": role, "host": host},
            )
    with pytest.raises(StoreNeedsUpgrade):
        RunStore.open(postgres_db_url, read_only=True)
    with RunStore.open(postgres_db_url) as store:
        assert sorted(r.run_id for r in store.list_runs()) == ["job", "solo"]
        job = store.get_run("job")
        assert [m.energy_j for m in job.members] == [2.0, 2.0]
        assert job.allocation is None and all(m.allocation is None for m in job.members)
        assert store.get_run("solo").allocation is None
        clock = FakeClock()
        tracker = Tracker(
            "new", meters=[_replay()], store=store, interval_s=0.5, clock=clock, emissions=False
        )
        tracker.start()
        clock.advance(1.0)
        tracker.stop()
        assert store.get_run(tracker.run_id).allocation == tracker.result.allocation
        assert tracker.result is not None and tracker.result.allocation is not None
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT value FROM wattwise_meta")).scalar_one() == "3"
    engine.dispose()
    assert _sample_indexes(postgres_db_url) == fresh == {s.SAMPLES_INDEX: ("run_id", "t_start_s")}


@pytest.mark.parametrize("fixture", [V1, V2], ids=["v1", "v2"])
def test_an_upgraded_store_has_the_samples_index_of_a_fresh_one(
    fixture: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "old.sqlite"
    shutil.copy(fixture, copy)
    assert _sample_indexes(f"sqlite:///{copy}") == {"ix_wattwise_samples_run_id": ("run_id",)}
    fresh = tmp_path / "fresh.sqlite"
    RunStore.open(str(fresh)).close()
    RunStore.open(str(copy)).close()
    expected = {s.SAMPLES_INDEX: ("run_id", "t_start_s")}
    assert _sample_indexes(f"sqlite:///{fresh}") == expected
    assert _sample_indexes(f"sqlite:///{copy}") == expected  # the old one dropped, not kept


def test_a_newer_store_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with RunStore.open(str(path)):
        pass
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE wattwise_meta SET value = '99'"))
    engine.dispose()
    with pytest.raises(StoreVersionError, match="upgrade wattwise") as caught:
        RunStore.open(str(path))
    assert not isinstance(caught.value, StoreNeedsUpgrade)
