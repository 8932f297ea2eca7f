"""``wattwise sweep compare`` through the command, with the machine's own meters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("yaml")

torch.set_num_threads(1)  # see tests/test_search.py

import typer  # noqa: E402
from tests._cli import one_error_line, wattwise  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise.cli._sweep import sweep_app  # noqa: E402
from wattwise.store import RunStore  # noqa: E402

SPACE = """\
model: mlp
epochs: 2
params:
  lr: {type: float, low: 0.001, high: 0.03, log: true, grid: [0.003, 0.02]}
  width: {type: int, low: 8, high: 32, grid: [16]}
  depth: [1]
"""


#: A constant 20 W on the CPU for ten hours, as ``wattwise runs export --format csv`` writes.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(sweep_app, name="sweep")
    return app


@pytest.fixture
def space(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def test_compare_json_has_the_documented_shape_and_is_stored(space: Path) -> None:
    args = ["sweep", "compare", "--model", "mlp", "--space", str(space), "--trials", "3"]
    result = CliRunner().invoke(_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    names = [s["strategy"] for s in d["strategies"]]
    assert names == ["grid", "random", "tpe", "hyperband"]  # the default list
    grid = d["strategies"][0]
    assert d["target_accuracy"] == pytest.approx(grid["best_accuracy"] - 0.005)
    assert d["energy_source"].startswith("estimated (") and d["scope"] == "process"
    for s in d["strategies"]:
        assert {"strategy", "best_accuracy", "total_energy_j", "energy_to_target_j"} <= set(s)
        assert s["total_energy_j"] > 0 and len(s["repeats"]) == 1
        rep = s["repeats"][0]
        # Grid's grid has 2 points: it stops there; the others use the 3-trial budget.
        assert rep["trial_count"] == (2 if s["strategy"] == "grid" else 3)
        assert len(rep["curve"]) == rep["trial_count"]
        assert rep["trials_energy_j"] <= rep["total_energy_j"]
    # Grid reaches its own target (its best minus 0.5 pp) within its total.
    assert 0 < grid["energy_to_target_j"] <= grid["total_energy_j"]
    assert any("stopped after its 2 grid points" in n for n in d["notes"])
    study = RunStore.open().get_study(d["study_id"])
    assert study.kind == "sweep-compare" and study.results is not None
    assert study.results["strategies"][0]["repeats"][0]["curve"] == grid["repeats"][0]["curve"]


def test_compare_text_says_when_a_target_is_never_reached(space: Path) -> None:
    args = ["sweep", "compare", "--model", "mlp", "--space", str(space), "--trials", "2"]
    result = CliRunner().invoke(_app(), [*args, "--strategies", "random", "--target", "100%"])
    assert result.exit_code == 0, result.output
    assert "never reached" in result.stdout
    assert "target    1.0000 (given)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "random,bohb"], "unknown strategy 'bohb'"),
        (["--strategies", "random"], "give --target, or include grid"),
        (["--target", "1.5"], "--target must be in (0, 1]"),
        (["--model", "resnet18"], "no built-in search space for model 'resnet18'"),
    ],
)
def test_compare_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_app(), ["sweep", "compare", "--trials", "1", *args])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("notaurl", "bad --storage 'notaurl'"),
        ("redis://localhost/0", "unsupported --storage redis://localhost/0"),
        (
            "postgresql://me:secret@127.0.0.1:1/db",
            "cannot reach the study storage postgresql://me:***@127.0.0.1:1/db",
        ),
    ],
)
def test_storage_errors_are_one_line_without_the_password(storage: str, message: str) -> None:
    for command in (["status"], ["run", "--trials", "1"]):
        args = ["sweep", *command, "--storage", storage, "--study", "s"]
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 2, result.output
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), lines
        assert message in lines[0] and "secret" not in result.output


def test_run_on_a_sqlite_study_records_trials_in_the_default_store(
    space: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["sweep", "run", "--storage", storage, "--study", "local", "--model", "mlp"]
    args += ["--space", str(space), "--trials", "2", "--strategy", "random", "--seed", "3"]
    result = CliRunner().invoke(_app(), [*args, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert (d["trial_count"], d["complete"], d["worker_trials"]) == (2, 2, 2)
    assert d["study_id"] == "sweep:local" and d["total_energy_j"] > 0
    # SQLite storage: the trials' runs go to the default store, not into Optuna's file.
    with RunStore.open() as store:
        study = store.get_study("sweep:local")
        assert len(study.runs) == 2 and study.params["storage"] == storage
    again = CliRunner().invoke(_app(), args)  # the study has its trials: no new one
    assert again.exit_code == 0, again.output
    assert "the study has 2 finished trials" in again.stdout
    status = CliRunner().invoke(
        _app(), ["sweep", "status", "--storage", storage, "--study", "local"]
    )
    assert status.exit_code == 0 and "2: 2 complete, 0 pruned, 0 failed" in status.stdout


def test_a_bad_budget_is_one_line() -> None:
    args = ["sweep", "run", "--storage", "sqlite://", "--study", "s", "--budget", "5 apples"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2 and "bad --budget '5 apples'" in result.output


def test_compare_and_run_measure_with_replayed_meters(space: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    meters = ["--meters", f"replay:{trace}"]
    args = ["sweep", "compare", "--model", "mlp", "--space", str(space), "--trials", "2"]
    result = CliRunner().invoke(_app(), [*args, "--strategies", "grid", *meters, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["energy_source"] == "estimated (replay of cpu-model)"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["sweep", "run", "--storage", storage, "--study", "r", "--model", "mlp"]
    args += ["--space", str(space), "--trials", "1", "--strategy", "random", *meters]
    ran = CliRunner().invoke(_app(), [*args, "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["energy_source"] == "estimated (replay of cpu-model)"
    with RunStore.open() as store:
        for study_id in (d["study_id"], "sweep:r"):
            for link in store.get_study(study_id).runs:
                run = store.get_run(link.run_id)
                assert [c.source.sensor for c in run.components] == ["replay of cpu-model"]


@pytest.mark.parametrize(
    ("command", "meters", "message"),
    [
        (["compare"], "bogus", "unknown meters 'bogus' (use auto or replay:PATH)"),
        (["run", "--study", "s"], "replay:/missing.csv", "cannot read trace /missing.csv"),
    ],
)
def test_bad_meters_are_one_line_and_write_nothing(
    command: list[str], meters: str, message: str, tmp_path: Path, child_env: dict[str, str]
) -> None:
    store, optuna_db = tmp_path / "store.sqlite", tmp_path / "optuna.db"
    if command[0] == "run":
        command = [*command, "--storage", f"sqlite:///{optuna_db}"]
    env = dict(child_env, WATTWISE_STORE=str(store))
    proc = wattwise(env, "sweep", *command, "--meters", meters)
    assert proc.returncode == 2
    assert message in one_error_line(proc)
    assert proc.stdout == "" and not store.exists() and not optuna_db.exists()
