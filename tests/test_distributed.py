"""Real ``torch.distributed`` jobs (gloo on 127.0.0.1) on a fake powercap at constant power:
every rank joins one run, the host's machine energy is counted once, a killed rank leaves
its part interrupted. The ranks run benchmarks/ddp_job.py (an MLP on the bundled digits)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from _ddp import JOB, driven_powercap, energy_between, start_ranks, wait_all
from wattwise._records import MemberRole, RunResult, RunStatus, Scope
from wattwise.meters._rapl import RaplMeter
from wattwise.store import RunStore
from wattwise.testing import FakePowercap
from wattwise.tracking import Tracker

pytestmark = pytest.mark.slow


def _env(child_env: dict[str, str], store: Path, fake: FakePowercap) -> dict[str, str]:
    env = {**child_env, "WATTWISE_STORE": str(store), "WATTWISE_POWERCAP_ROOT": str(fake.root)}
    for k in ("WATTWISE_RUN_ID", "WATTWISE_HOST", "CUDA_VISIBLE_DEVICES"):
        env.pop(k, None)
    return env


def _reference(fake: FakePowercap) -> Tracker:
    return Tracker(
        "reference",
        meters=[RaplMeter(root=fake.root)],
        store=False,
        interval_s=0.05,
        emissions=False,
    )


def _the_run(store: Path) -> RunResult:
    with RunStore.open(str(store), read_only=True) as opened:
        runs = opened.list_runs()
        assert len(runs) == 1, [r.name for r in runs]  # one run, however many ranks
        return opened.get_run(runs[0].run_id)


def _check_host_energy(run: RunResult, ref: RunResult) -> None:
    (host,) = [m for m in run.members if m.role is MemberRole.HOST]
    start = run.started_at + timedelta(seconds=host.offset_s)
    expected = energy_between(ref, start, start + timedelta(seconds=host.duration_s))
    assert expected > 0
    assert run.energy_j == pytest.approx(expected, rel=0.02)
    assert run.energy_j == pytest.approx(host.energy_j)
    assert run.provenance == "measured"
    (part,) = run.hosts
    assert part.ranks_energy_j <= part.energy_j  # process shares of that same machine


@pytest.mark.parametrize("world_size", [2, 4])
def test_every_rank_joins_one_run_and_the_host_is_counted_once(
    world_size: int, child_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    with driven_powercap(tmp_path / "sys") as fake, _reference(fake) as ref:
        results = wait_all(start_ranks(_env(child_env, store, fake), world_size, "--steps", "200"))
    for code, line, err in results:
        assert code == 0 and line is not None, err
    assert len({line["run"] for _, line, _ in results if line}) == 1
    run = _the_run(store)
    assert run.status is RunStatus.COMPLETED
    assert sorted(m.rank for m in run.members if m.rank is not None) == list(range(world_size))
    roles = [m.role for m in run.members]
    assert roles.count(MemberRole.HOST) == 1  # one reader of the machine's meters
    assert all(m.scope is Scope.PROCESS for m in run.members if m.role is MemberRole.RANK)
    assert ref.result is not None
    _check_host_energy(run, ref.result)


def test_a_rank_killed_with_sigkill_is_interrupted_and_the_run_closes(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    with driven_powercap(tmp_path / "sys") as fake:
        env = _env(child_env, store, fake)
        results = wait_all(start_ranks(env, 2, "--steps", "20", "--kill-rank", "1"))
    assert results[0][0] == 0, results[0][2]
    assert results[1][0] == -signal.SIGKILL
    run = _the_run(store)
    assert run.status is RunStatus.INTERRUPTED  # closed: no member runs on
    assert run.ended_at is not None
    by_rank = {m.rank: m for m in run.members}
    assert by_rank[1].status is RunStatus.INTERRUPTED
    assert by_rank[0].status is RunStatus.COMPLETED
    assert by_rank[0].energy_j > 0  # (the killed one may have died before its first flush)


def test_wattwise_run_around_torchrun_makes_one_run(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    with driven_powercap(tmp_path / "sys") as fake:
        env = _env(child_env, store, fake)
        with _reference(fake) as ref:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "wattwise",
                    "run",
                    "--json",
                    "--interval",
                    "0.05",
                    "--",
                    *torchrun,
                    "--nproc-per-node",
                    "2",
                    str(JOB),
                    "--steps",
                    "30",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    run = _the_run(store)
    assert printed["run_id"] == run.run_id and len(printed["members"]) == 3
    launcher = run.members[0]
    assert launcher.role is MemberRole.HOST and launcher.rank is None  # wattwise run reads
    assert launcher.pid != os.getpid()
    assert [m.role for m in run.members[1:]] == [MemberRole.RANK, MemberRole.RANK]
    assert ref.result is not None
    _check_host_energy(run, ref.result)
