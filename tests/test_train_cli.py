"""``wattwise train``: real training on digits through the command, JSON and errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import typer
from typer.testing import CliRunner

import wattwise.store

if not hasattr(wattwise.store, "RunStore"):  # the CLI package imports the store
    pytest.skip("the run store is not on this branch yet", allow_module_level=True)

from wattwise.cli import _train as train_cli
from wattwise.store import RunStore

#: A constant 20 W CPU for ten hours, as ``wattwise runs export --format csv`` writes it.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)
SOURCE = "estimated (replay of cpu-model)"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_cli.train)

    @app.command("other")
    def _other() -> None:  # a second command keeps `train` a named sub-command
        pass

    return app


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(TRACE)
    return path


@pytest.fixture
def cli(trace: Path, tmp_path: Path) -> Any:
    """Run ``wattwise train`` with a constant 20 W replayed trace (``--meters replay:PATH``),
    storing into ``tmp_path / "runs.sqlite"``."""
    import torch

    torch.set_num_threads(1)  # see tests/test_train.py
    runner = CliRunner()
    store = str(tmp_path / "runs.sqlite")

    def invoke(*args: str) -> Any:
        argv = ["train", *args, "--meters", f"replay:{trace}", "--store", store]
        return runner.invoke(_app(), argv)

    return invoke


def test_train_json_has_every_figure_with_its_source(cli: Any, tmp_path: Path) -> None:
    ckpt = tmp_path / "m.pt"
    r = cli(
        "--model", "cnn", "--epochs", "4", "--stop", "plateau:1:0.5",
        "--save", str(ckpt), "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["model"] == "cnn" and d["dataset"] == "digits" and len(d["classes"]) == 10
    assert [e["epoch"] for e in d["epochs"]] == [1, 2]  # improvement < 0.5 stops at once
    for e in d["epochs"]:
        assert {"epoch", "energy_j", "val_accuracy", "val_loss", "duration_s"} <= set(e)
        assert e["source"] == SOURCE
        assert e["energy_j"] == pytest.approx(20.0 * e["duration_s"], rel=1e-6)
    assert d["stop_rule"] == "plateau" and d["stop_reason"].startswith("plateau:")
    assert d["energy_source"] == SOURCE
    assert d["predicted_full_energy_j"] > d["total_energy_j"] > 0
    assert d["energy_saved_j"] == pytest.approx(d["predicted_full_energy_j"] - d["total_energy_j"])
    assert "estimated" in d["predicted_full_energy_source"]
    assert d["final_val_accuracy"] == d["epochs"][-1]["val_accuracy"]
    assert d["checkpoint"] == str(ckpt) and ckpt.is_file()
    # The run is a normal tracked run with one window per epoch.
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        run = store.get_run(d["run_id"])
    assert run.energy_j == pytest.approx(d["total_energy_j"])
    assert {"epoch-1", "epoch-2"} <= {w.path for w in run.windows}


@pytest.mark.slow
def test_train_stops_with_the_learning_curve_rule(cli: Any) -> None:
    r = cli("--model", "cnn", "--epochs", "20", "--stop", "curve:5pp:4", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["stop_rule"] == "curve"
    assert 4 <= len(d["epochs"]) < 20
    assert re.match(
        r"curve: a (power-law|Morgan-Mercer-Flodin|Weibull) learning curve fitted to",
        d["stop_reason"],
    )
    assert "below the tolerance of 5 pp" in d["stop_reason"]
    assert d["energy_saved_j"] > 0


def test_transfer_extends_the_head_and_freezes_by_pattern(cli: Any, tmp_path: Path) -> None:
    ckpt = tmp_path / "08.pt"
    first = cli(
        "--model", "cnn", "--classes", "0-7", "--epochs", "2", "--save", str(ckpt), "--json"
    )
    assert first.exit_code == 0, first.output
    r = cli(
        "--init", str(ckpt), "--extend-classes", "--freeze", "features.*",
        "--epochs", "1", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["extended_classes"] == ["8", "9"] and d["model"] == "cnn"
    assert d["frozen"] == [
        "features.0.bias",
        "features.0.weight",
        "features.3.bias",
        "features.3.weight",
    ]
    assert d["init"] == str(ckpt)
    # Fine-tuning the backbone at its own rate, with the head at --lr.
    r2 = cli(
        "--init", str(ckpt), "--extend-classes", "--finetune-lr", "1e-4", "--epochs", "1", "--json"
    )
    assert r2.exit_code == 0, r2.output


def test_human_output_labels_the_prediction_and_the_source(cli: Any, tmp_path: Path) -> None:
    r = cli(
        "--model",
        "mlp",
        "--epochs",
        "5",
        "--stop",
        "target:0.3",
        "--tensorboard",
        str(tmp_path / "tb"),
    )
    assert r.exit_code == 0, r.output
    out = r.output
    assert SOURCE in out
    assert "PREDICTED" in out and "predicted, not measured" in out
    assert "target: validation accuracy" in out
    assert "epoch 1/5" in out
    assert any((tmp_path / "tb").iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nonet"], "unknown model 'nonet'"),
        (["--model", "cnn", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--model", "cnn", "--stop", "plateau:soon"], "bad --stop 'plateau:soon'"),
        (["--model", "cnn", "--stop", "curve:lots"], "bad --stop 'curve:lots'"),
        (["--model", "cnn", "--stop", "curve:0.01:2"], "min_epochs >= 3"),
        (["--model", "cnn", "--stop", "budget:3g"], "grid intensity"),
        (["--model", "cnn", "--init", "/nonexistent/m.pt"], "no checkpoint at /nonexistent/m.pt"),
        (["--model", "cnn", "--extend-classes"], "--extend-classes extends"),
        (["--model", "cnn", "--classes", "0-12"], "class 10 is not in digits"),
        (["--model", "cnn", "--freeze", "trunk.*"], "matches no parameter"),
        (["--model", "cnn", "--device", "tpu"], "unknown device"),
        (["--epochs", "2"], "give --model"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Any, args: list[str], message: str) -> None:
    r = cli(*args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert r.stdout == ""


def test_class_mismatch_without_extend_is_refused(cli: Any, tmp_path: Path) -> None:
    ckpt = tmp_path / "m.pt"
    assert (
        cli(
            "--model", "mlp", "--classes", "0-7", "--epochs", "1", "--save", str(ckpt), "--json"
        ).exit_code
        == 0
    )
    r = cli("--init", str(ckpt), "--epochs", "1")
    assert r.exit_code == 2
    assert "class mismatch" in r.stderr and "--extend-classes" in r.stderr
    r = cli("--init", str(ckpt), "--model", "cnn", "--classes", "0-7")
    assert r.exit_code == 2 and "holds mlp" in r.stderr


def test_the_run_lands_in_the_store(tmp_path: Path, trace: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    argv = ["train", "--model", "mlp", "--epochs", "2", "--store", url, "--json"]
    r = CliRunner().invoke(_app(), [*argv, "--meters", f"replay:{trace}"])
    assert r.exit_code == 0, r.output
    run_id = json.loads(r.stdout)["run_id"]
    with RunStore.open(url) as store:
        run = store.get_run(run_id)
    assert {"epoch-1", "epoch-2"} <= {w.path for w in run.windows}
    assert run.energy_j > 0


@pytest.mark.parametrize(
    ("meters", "message"),
    [("replay:/missing.csv", "missing.csv"), ("bogus", "unknown meters 'bogus'")],
)
def test_bad_meters_are_one_line_and_exit_2(
    tmp_path: Path, child_env: dict[str, str], meters: str, message: str
) -> None:
    """End to end through ``python -m wattwise``: refused before any training or storing."""
    import subprocess
    import sys

    db = tmp_path / "s.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "train", "--model", "mlp", "--meters", meters],
        env=dict(child_env, WATTWISE_STORE=str(db)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not db.exists()


def _bad_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files that are not checkpoints, each with what our one line must say."""
    import datetime
    import pickle
    import zipfile

    import torch

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("garbage\n")
    pickled = tmp_path / "pickled.pt"
    pickled.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    objects = tmp_path / "objects.pt"
    torch.save({"when": datetime.datetime(2020, 1, 1), "w": torch.zeros(8)}, objects)
    whole = (tmp_path / "objects.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    bad_pickle = tmp_path / "bad-pickle.pt"
    with zipfile.ZipFile(bad_pickle, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02garbage")
        z.writestr("archive/version", b"3\n")
    bad_zip = tmp_path / "bad-zip.pt"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("hello.txt", b"x")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(4)}, foreign)
    return {
        "empty": (empty, "is empty"),
        "garbage": (garbage, "is not a whole torch.save file"),
        "pickled": (pickled, "is not a whole torch.save file"),
        "objects": (objects, "holds Python objects (datetime.datetime), not only tensors"),
        "cut": (cut, "cut short"),
        "bad-pickle": (bad_pickle, "is damaged (unreadable pickle)"),
        "bad-zip": (bad_zip, "is damaged (file in archive is not in a subdirectory"),
        "foreign": (foreign, "is not a wattwise checkpoint"),
    }


@pytest.mark.slow
def test_a_bad_checkpoint_is_one_line_of_ours(tmp_path: Path, child_env: dict[str, str]) -> None:
    """torch's four lines of advice about ``weights_only`` never reach the user."""
    import subprocess
    import sys

    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite"))
    for label, (path, needle) in _bad_checkpoints(tmp_path).items():
        proc = subprocess.run(
            [sys.executable, "-m", "wattwise", "train", "--init", str(path), "--epochs", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2, (label, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:"), (label, proc.stderr)
        assert needle in lines[0] and path.name in lines[0], (label, lines[0])
        assert "weights_only" not in lines[0] and "wattwise train --save" in lines[0]


@pytest.mark.slow
def test_ctrl_c_prints_and_stores_what_was_done(tmp_path: Path, child_env: dict[str, str]) -> None:
    """SIGINT during `wattwise train`: exit 130, the summary of the completed epochs printed,
    and the run stored as interrupted with its epochs and their accuracy."""
    import signal
    import subprocess
    import sys
    import time

    from wattwise._records import RunStatus
    from wattwise.store import RunStore
    from wattwise.train._history import history_id

    db = tmp_path / "s.sqlite"
    env = dict(child_env, WATTWISE_STORE=str(db), COLUMNS="160")
    argv = [sys.executable, "-m", "wattwise", "train", "--model", "mlp", "--epochs", "2000"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        recorded = 0
        while recorded < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            if db.exists():
                with RunStore.open(str(db)) as store:
                    studies = store.list_studies(kind="training")
                    if studies and studies[0].results:
                        recorded = len(studies[0].results["epochs"])
        assert recorded >= 2, "no epoch was recorded in time"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Aborted" not in err
    assert "interrupted (Ctrl-C) during epoch" in out and "stored as interrupted" in out
    assert "val acc" in out and "energy" in out

    with RunStore.open(str(db)) as store:
        (run,) = store.list_runs()
        history = store.get_study(history_id(run.run_id))
    assert run.status is RunStatus.INTERRUPTED
    assert run.energy_j > 0
    done = history.results["epochs"] if history.results else []
    assert history.results is not None and history.results["status"] == "interrupted"
    assert len(done) >= 2 and [e["epoch"] for e in done] == list(range(1, len(done) + 1))
    assert all(0 <= e["val_accuracy"] <= 1 and e["energy_j"] > 0 for e in done)
    epochs = {w.path for w in run.windows if w.path.startswith("epoch-") and "/" not in w.path}
    # The completed epochs, and the one cut short (its energy was spent: it is kept).
    assert {f"epoch-{e['epoch']}" for e in done} <= epochs
    assert len(epochs) in (len(done), len(done) + 1)
    assert f"{len(done)} of 2000 epochs completed" in out
