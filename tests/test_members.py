"""Runs with members: many processes join one run, each host's energy is counted once.

In-process trackers on replayed meters and a real SQLite store: the election, the total,
a member whose process died, the clocks, and the identity taken from the environment. The
real engines (torch.distributed ranks, a PostgreSQL server shared by two hosts) are in
test_distributed.py and test_multihost.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _cli import wattwise
from wattwise import ConfigError
from wattwise._records import Member, MemberRole, RunStatus, Scope, host_identity
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.tracking import Tracker
from wattwise.tracking._members import RUN_ENV_VAR, plan_join, run_id_from_env

CPU = Component(
    "cpu:package-0",
    ComponentKind.CPU,
    Source(Method.MEASURED, "rapl-powercap"),
    relative_uncertainty=0.02,
)


def replay(power_w: float) -> ReplayMeter:
    return ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 3600.0, power_w * 3600.0)])


def member(host: str, rank: int | None = None, *, pid: int | None = None) -> Member:
    return Member(host=host, pid=pid or os.getpid(), rank=rank, local_rank=rank, world_size=3)


def tracker(store: RunStore, clock: FakeClock, who: Member, *, power_w: float = 10.0) -> Tracker:
    return Tracker(
        "job",
        meters=[replay(power_w)],
        store=store,
        interval_s=0.1,
        clock=clock,
        emissions=False,
        join="job-1",
        member=who,
    )


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore.open(str(tmp_path / "runs.sqlite"))


def test_one_host_is_counted_once_however_many_ranks_join(store: RunStore) -> None:
    clock = FakeClock()
    ranks = [tracker(store, clock, member("host-a", r)) for r in range(3)]
    for t in ranks:
        t.start()
    assert [t.role for t in ranks] == [MemberRole.HOST, MemberRole.RANK, MemberRole.RANK]
    assert ranks[0].run_id == "job-1"  # the first to join made the run
    assert all(t.member_of == "job-1" for t in ranks)
    clock.advance(1.0)
    results = [t.stop() for t in ranks]
    assert results[0].scope is Scope.MACHINE
    assert results[1].scope is Scope.PROCESS and results[2].scope is Scope.PROCESS

    assert [r.run_id for r in store.list_runs()] == ["job-1"]  # one run, not three
    run = store.get_run("job-1")
    assert run.status is RunStatus.COMPLETED
    assert run.energy_j == pytest.approx(10.0, rel=1e-9)  # the host's, once (not 30 J)
    assert [c.name for c in run.components] == [CPU.name]
    assert [(m.rank, m.role) for m in run.members] == [
        (0, MemberRole.HOST),
        (1, MemberRole.RANK),
        (2, MemberRole.RANK),
    ]
    (host,) = run.hosts
    assert host.host == "host-a" and host.ranks == 2
    assert host.energy_j == pytest.approx(run.energy_j)
    # Each rank's process share is part of the host's (the ranks here are one process, so
    # their sum is not: test_distributed.py checks the sum with one process per rank).
    assert all(0 <= m.energy_j <= host.energy_j for m in run.members[1:])
    assert run.to_dict()["hosts"][0]["ranks"] == 2


def test_two_hosts_have_their_own_components_and_one_total(store: RunStore) -> None:
    clock = FakeClock()
    a = tracker(store, clock, member("host-a", 0), power_w=10.0).start()
    b = tracker(store, clock, member("host-b", 1), power_w=30.0).start()
    a2 = tracker(store, clock, member("host-a", 2), power_w=10.0).start()
    assert (a.role, b.role, a2.role) == (MemberRole.HOST, MemberRole.HOST, MemberRole.RANK)
    clock.advance(2.0)
    for t in (a2, b, a):
        t.stop()
    run = store.get_run("job-1", with_samples=True)
    assert {c.name for c in run.components} == {f"host-a/{CPU.name}", f"host-b/{CPU.name}"}
    assert run.energy_j == pytest.approx(20.0 + 60.0, rel=1e-9)
    assert {h.host: round(h.energy_j, 6) for h in run.hosts} == {"host-a": 20.0, "host-b": 60.0}
    # The timeline holds both hosts' samples, each on the run's timeline.
    b_member = next(m for m in run.members if m.host == "host-b")
    b_samples = [s for s in run.samples if s.component.startswith("host-b/")]
    b_own = store.samples(b_member.run_id)
    assert len(b_samples) == len(b_own) > 0
    for shifted, own in zip(b_samples, b_own, strict=True):
        assert shifted.t_start_s == pytest.approx(own.t_start_s + b_member.offset_s)
    assert sum(s.energy_j or 0.0 for s in b_samples) == pytest.approx(60.0, rel=1e-9)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_member_whose_process_died_is_interrupted_and_the_run_still_closes(
    store: RunStore,
) -> None:
    clock = FakeClock()
    first = tracker(store, clock, member(host_identity(), 0)).start()
    # A rank that joined, then was killed: its row says running, its process is gone.
    dead = store.join_run(
        group_id="job-1",
        run_id="f" * 32,
        name="job",
        scope=Scope.MACHINE,
        member=member(host_identity(), 1, pid=_dead_pid()),
        pid_created_s=None,
        command=None,
        components=[CPU],
        baseline_power_w=None,
    )
    assert dead.role is MemberRole.RANK
    assert store.get_run("job-1").status is RunStatus.RUNNING  # the first one runs on
    clock.advance(1.0)
    first.stop()
    run = store.get_run("job-1")
    assert run.status is RunStatus.INTERRUPTED  # closed: no member runs any more
    assert run.ended_at is not None
    assert {m.rank: m.status for m in run.members} == {
        0: RunStatus.COMPLETED,
        1: RunStatus.INTERRUPTED,
    }
    assert run.energy_j == pytest.approx(10.0, rel=1e-9)  # the host's part is whole


def test_a_dead_host_member_gives_its_claim_to_the_next_member_there(store: RunStore) -> None:
    clock = FakeClock()
    keeper = tracker(store, clock, member("elsewhere", 9)).start()  # keeps the run open
    store.join_run(
        group_id="job-1",
        run_id="d" * 32,
        name="job",
        scope=Scope.MACHINE,
        member=member(host_identity(), 0, pid=_dead_pid()),
        pid_created_s=None,
        command=None,
        components=[CPU],
        baseline_power_w=None,
    )
    late = tracker(store, clock, member(host_identity(), 1)).start()
    assert late.role is MemberRole.HOST  # the dead claimant's host was released
    clock.advance(0.5)
    late.stop()
    keeper.stop()
    roles = {m.rank: m.role for m in store.get_run("job-1").members}
    assert roles[1] is MemberRole.HOST


def test_joining_a_finished_run_records_a_run_of_its_own(store: RunStore) -> None:
    clock = FakeClock()
    with tracker(store, clock, member("host-a", 0)):
        clock.advance(0.2)
    late = tracker(store, clock, member("host-a", 1))
    with late:
        clock.advance(0.2)
    assert late.member_of is None and late.role is None
    assert late.run_id != "job-1"
    assert any("could not join run job-1" in w and "finished" in w for w in late.warnings)
    assert len(store.list_runs()) == 2


def test_a_member_with_a_skewed_wall_clock_lands_where_it_ran(store: RunStore) -> None:
    # Its wall clock is years off (FakeClock's wall starts in 2026-01-01 or wherever we say):
    # start, heartbeats and end come from the store server, so it is neither stale nor
    # misplaced on the run's timeline.
    skewed = FakeClock(wall=datetime.now(UTC) - timedelta(days=400))
    ahead = FakeClock(wall=datetime.now(UTC) + timedelta(hours=5))
    a = tracker(store, skewed, member("host-a", 0)).start()
    b = tracker(store, ahead, member("host-b", 1)).start()
    skewed.advance(3.0)
    ahead.advance(3.0)
    a._flush()  # a heartbeat from each (the flusher would send one within 2 s)
    b._flush()
    live = store.get_run("job-1")
    assert live.status is RunStatus.RUNNING  # not "stale" for a clock 400 days behind
    assert abs((live.started_at - datetime.now(UTC)).total_seconds()) < 60
    b.stop()
    a.stop()
    run = store.get_run("job-1")
    offsets = {m.host: m.offset_s for m in run.members}
    assert offsets["host-a"] == 0.0
    assert 0.0 <= offsets["host-b"] < 30.0  # joined right after, whatever its clock says
    assert run.duration_s == pytest.approx(max(offsets["host-b"] + 3.0, 3.0), abs=1e-6)
    b_row = store.get_run(next(m.run_id for m in run.members if m.host == "host-b"))
    assert b_row.ended_at is not None
    assert abs((b_row.ended_at - datetime.now(UTC)).total_seconds()) < 60


# -- the identity from the environment --------------------------------------------------------

TORCHRUN = {
    "RANK": "1",
    "LOCAL_RANK": "1",
    "WORLD_SIZE": "4",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RUN_ID": "none",
}


def test_every_rank_of_a_job_derives_the_same_run_id() -> None:
    ids = {run_id_from_env({**TORCHRUN, "RANK": str(r)}) for r in range(4)}
    assert len(ids) == 1 and None not in ids
    other_port = run_id_from_env({**TORCHRUN, "MASTER_PORT": "29501"})
    assert other_port not in ids
    elastic = run_id_from_env({**TORCHRUN, "TORCHELASTIC_RUN_ID": "abc"})
    assert elastic not in ids and elastic == run_id_from_env(
        {**TORCHRUN, "TORCHELASTIC_RUN_ID": "abc", "MASTER_PORT": "1"}
    )
    assert run_id_from_env({**TORCHRUN, RUN_ENV_VAR: "outer"}) == "outer"
    assert run_id_from_env({"PATH": "/bin"}) is None


def test_the_member_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in TORCHRUN.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("WATTWISE_HOST", "node-7")
    plan = plan_join(None, None)
    assert plan is not None
    assert plan.member == Member("node-7", os.getpid(), rank=1, local_rank=1, world_size=4)
    assert plan_join(False, None) is None
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ConfigError, match="RANK='one' is not an integer"):
        plan_join(None, None)


def test_a_member_without_a_run_to_join_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k in ("RANK", "WORLD_SIZE", RUN_ENV_VAR):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="no run to join"):
        plan_join(None, Member("h", 1))
    with pytest.raises(ConfigError, match="bad run id"):
        plan_join("has space", None)


# -- the command line ------------------------------------------------------------------------

CHILD = """
import wattwise
with wattwise.track("inner", interval_s=0.05) as t:
    sum(i * i for i in range(300_000))
print(t.role, t.member_of)
"""


@pytest.mark.slow
def test_wattwise_run_and_track_inside_make_one_run(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**child_env, "WATTWISE_STORE": str(tmp_path / "cli.sqlite")}
    for k in ("RANK", "WORLD_SIZE", RUN_ENV_VAR):
        env.pop(k, None)
    proc = wattwise(env, "run", "--interval", "0.05", "--", sys.executable, "-c", CHILD)
    assert proc.returncode == 0, proc.stderr
    assert "rank" in proc.stdout  # the child joined as a rank member: its process share
    listed = wattwise(env, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 1
    (run_id,) = [r["run_id"] for r in runs]
    shown = wattwise(env, "runs", "show", run_id, "--json")
    run = json.loads(shown.stdout)
    assert [m["role"] for m in run["members"]] == ["host", "rank"]
    assert run["members"][1]["scope"] == "process"
    text = wattwise({**env, "COLUMNS": "200"}, "runs", "show", run_id)
    assert text.returncode == 0, text.stderr
    assert "ranks' process shares" in text.stdout
    assert "process share, not added" in text.stdout and "in the total" in text.stdout
