"""Distributed search on a real, throwaway PostgreSQL server: worker processes sharing one
Optuna study, a worker killed with SIGKILL mid-trial, and the study's status.

Workers are real child processes running the ``sweep`` commands; their energy comes from
the machine's own meters (an estimate on most test machines), so assertions are about
what was recorded where, not about how many joules.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("yaml")

import sqlalchemy as sa  # noqa: E402
import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise._records import RunStatus  # noqa: E402
from wattwise.cli._sweep import sweep_app  # noqa: E402
from wattwise.search import open_storage, sweep_study_id  # noqa: E402
from wattwise.search._storage import close_storage  # noqa: E402
from wattwise.store import RunStore  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# The ``sweep`` commands on a Typer app, as ``wattwise`` mounts them. With BARRIER set, the
# workers import the heavy modules first and wait for each other, so that they start their
# search together however unevenly a busy machine starts processes.
RUNNER = """\
import logging
import os
import time
from pathlib import Path

import typer
from wattwise.cli._common import NoteHandler
from wattwise.cli._sweep import sweep_app

barrier = os.environ.get("BARRIER")
if barrier:
    import sklearn.datasets, torch  # noqa: F401
    Path(barrier, str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(os.listdir(barrier)) < int(os.environ["BARRIER_N"]) and time.monotonic() < deadline:
        time.sleep(0.05)
logging.getLogger("wattwise").addHandler(NoteHandler())
app = typer.Typer(add_completion=False)
app.add_typer(sweep_app, name="sweep")
app()
"""

# Trials of about half a second (two workers), and of several seconds (long enough to be
# killed after its first samples reached the store, which the tracker flushes every 2 s).
SPACE = """\
model: cnn
epochs: {epochs}
params:
  lr: {{type: float, low: 0.001, high: 0.02, log: true}}
  batch_size: [16]
  width: [16]
  depth: [2]
"""


class Sweep:
    """Runs ``sweep`` commands in child processes."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.runner = tmp_path / "runner.py"
        self.runner.write_text(RUNNER)
        self.env = dict(env)
        self.env["WATTWISE_STORE"] = str(tmp_path / "unused-default-store.sqlite")
        self.env["OMP_NUM_THREADS"] = "1"  # tiny models: one thread each (see test_search)
        self.tmp_path = tmp_path

    def space(self, epochs: int) -> str:
        path = self.tmp_path / f"space-{epochs}.yaml"
        path.write_text(SPACE.format(epochs=epochs))
        return str(path)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, str(self.runner), "sweep", *args]

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout
        )

    @staticmethod
    def status(url: str, study: str, *more: str) -> Any:
        """``sweep status`` in this process (it needs no worker of its own)."""
        app = typer.Typer()
        app.add_typer(sweep_app, name="sweep")
        args = ["sweep", "status", "--storage", url, "--study", study, *more]
        return CliRunner().invoke(app, args)

    def status_json(self, url: str, study: str) -> Any:
        result = self.status(url, study, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def sweep(tmp_path: Path, child_env: dict[str, str]) -> Sweep:
    return Sweep(tmp_path, child_env)


def test_two_workers_share_one_study_and_record_their_energy(
    sweep: Sweep, postgres_db_url: str
) -> None:
    url = postgres_db_url
    args = ["run", "--storage", url, "--study", "two", "--space", sweep.space(4)]
    args += ["--trials", "6", "--strategy", "tpe", "--heartbeat", "2", "--json"]
    barrier = sweep.tmp_path / "barrier"
    barrier.mkdir()
    env = {"BARRIER": str(barrier), "BARRIER_N": "2"}
    workers = [sweep.start(*args, env=env), sweep.start(*args, env=env)]
    outs = []
    for w in workers:
        out, err = w.communicate(timeout=180)
        assert w.returncode == 0, err
        outs.append(json.loads(out))
    pids = {w.pid for w in workers}

    status = sweep.status_json(url, "two")
    finished = status["complete"] + status["pruned"]
    # A worker already in a trial when the target is reached finishes it.
    assert 6 <= finished <= 7 and status["failed"] == 0 and status["running"] == 0
    assert sum(o["worker_trials"] for o in outs) == status["trials"]
    by_pid = {w["pid"]: w for w in status["workers"]}
    assert set(by_pid) == pids, "both workers ran trials of the one study"
    assert all(by_pid[p]["trials"] >= 1 and by_pid[p]["energy_j"] > 0 for p in pids)
    assert status["hosts"] == [
        {
            "host": socket.gethostname(),
            "trials": status["trials"],
            "energy_j": pytest.approx(status["total_energy_j"]),
        }
    ]
    assert status["total_energy_j"] == pytest.approx(sum(w["energy_j"] for w in status["workers"]))
    assert status["energy_source"].startswith(("estimated", "measured", "mixed"))

    # The energy is in the wattwise store, in the same database as Optuna's tables.
    with RunStore.open(url) as store:
        study = store.get_study(sweep_study_id("two"))
        assert study.kind == "sweep" and len(study.runs) == status["trials"]
        for link in study.runs:
            a = link.attributes
            assert {"trial", "state", "params", "accuracy", "host"} <= set(a)
            assert a["host"] == socket.gethostname() and a["pid"] in pids
            assert store.get_run(link.run_id).energy_j == pytest.approx(a["energy_j"])
        total = sum(link.attributes["energy_j"] for link in study.runs)
        assert total == pytest.approx(status["total_energy_j"])
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"trials", "studies", "wattwise_runs", "wattwise_studies"} <= tables


def _wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_workers_trial_fails_and_the_study_goes_on(
    sweep: Sweep, postgres_db_url: str
) -> None:
    url = postgres_db_url
    common = ["run", "--storage", url, "--study", "kill", "--space", sweep.space(20)]
    common += ["--strategy", "random", "--heartbeat", "1", "--grace", "2"]
    # The first worker would go on for a while: it is killed in whichever trial first has
    # samples in the store (the tracker flushes every 2 s).
    victim = sweep.start(*common, "--trials", "20")
    storage = open_storage(url, heartbeat_interval_s=None)
    store = RunStore.open(url)

    def measured_running_trial() -> Any:
        try:
            study = optuna.load_study(study_name="kill", storage=storage)
        except KeyError:
            return None
        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            run_id = t.user_attrs.get("run_id")
            if run_id is not None and store.get_run(run_id).energy_j > 0:
                return t
        return None

    try:
        trial = _wait_for(measured_running_trial, 120, "a running trial with stored samples")
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    run_id = trial.user_attrs["run_id"]
    study = optuna.load_study(study_name="kill", storage=storage)
    done_before = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    time.sleep(2.5)  # past the grace period: the trial's heartbeat is stale now

    # A second worker asks for one more finished trial than the study has.
    proc = sweep.run(*common, "--trials", str(done_before + 1), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "stopped beating its heartbeat" in proc.stderr
    # The study went on: the killed trial failed, the new worker ran the missing one.
    assert result["failed"] == 1 and result["worker_trials"] == 1
    assert result["complete"] == done_before + 1
    killed = next(t for t in result["trials"] if t["number"] == trial.number)
    assert killed["state"] == "fail" and killed["pid"] == victim.pid
    assert killed["energy_j"] is None  # the worker died before recording it on the trial

    status = sweep.status_json(url, "kill")
    assert status["trials"] == done_before + 2 and status["failed"] == 1
    assert status["complete"] == done_before + 1 and status["running"] == 0
    # The killed trial's energy is what the store holds, measured up to its last flush.
    partial = store.get_run(run_id)
    assert partial.status is RunStatus.INTERRUPTED
    assert status["interrupted_energy_j"] == pytest.approx(partial.energy_j)
    assert status["interrupted_energy_j"] > 0 and status["unmeasured_trials"] == 0
    by_pid = {w["pid"]: w for w in status["workers"]}
    assert by_pid[victim.pid]["trials"] == done_before + 1
    recorded = sum(t["energy_j"] or 0.0 for t in result["trials"])
    assert status["total_energy_j"] == pytest.approx(recorded + partial.energy_j)
    link = next(r for r in store.get_study(sweep_study_id("kill")).runs if r.run_id == run_id)
    assert link.attributes["state"] == "fail"
    assert link.attributes["energy_measured_until_worker_died"] is True
    text = sweep.status(url, "kill")
    assert text.exit_code == 0, text.output
    assert socket.gethostname() in text.stdout and "whose worker died" in text.stdout
    assert f"{done_before + 1} complete, 0 pruned, 1 failed" in text.stdout
    store.close()
    close_storage(storage)


def test_status_of_a_missing_study_is_one_line(sweep: Sweep, postgres_db_url: str) -> None:
    proc = sweep.run("status", "--storage", postgres_db_url, "--study", "nope")
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert (
        len(errors) == 1 and "no study 'nope'" in errors[0] and "studies there: none" in errors[0]
    )
    assert "Traceback" not in proc.stderr
