"""A store written by an older wattwise is upgraded in place, keeping every run.

``tests/data/store-v1.sqlite`` is a real store written by wattwise at schema version 1
(commit 240a70a, ``wattwise run --name "v1 run" -- sleep 1.5``): one completed run of two
estimated components and 18 samples.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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

V1 = Path(__file__).parent / "data" / "store-v1.sqlite"
V1_RUN = "03fae6132c22407cacf30ccb10b33b4d"


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "runs.sqlite"
    shutil.copy(V1, path)
    return path


def _version(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select value from wattwise_meta")).scalar_one())
    finally:
        engine.dispose()


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
        assert [r.run_id for r in store.list_runs()] == [V1_RUN]
    assert _version(old_store) == SCHEMA_VERSION == 2


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
        clock.advance(2.0)
        for t in trackers:
            t.stop()
        run = store.get_run("job-after-upgrade")
        assert len(run.members) == 2 and run.energy_j == pytest.approx(20.0, rel=1e-6)
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
    assert "upgraded" in done.stdout and "schema version 2" in done.stdout
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
    # A version-1 database: today's tables less what version 2 added, at version 1.
    with RunStore.open(postgres_db_url):
        pass
    engine = sa.create_engine(postgres_db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for name in ("group_id", "role", "claims_host", "rank", "local_rank", "world_size",
                     "anchor_at", "offset_s", "server_clock", "pid_created_s"):  # fmt: skip
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
        assert conn.execute(sa.text("SELECT value FROM wattwise_meta")).scalar_one() == "2"
    engine.dispose()


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
