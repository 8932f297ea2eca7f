"""``wattwise study``: the three commands end to end on digits, JSON, storage and errors.

The command group is mounted on a local app (the lead mounts it on ``wattwise``); runs are
measured with a replayed constant 20 W trace, given as ``--meters replay:PATH``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

torch.set_num_threads(1)  # see tests/test_train.py

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise.cli import _study as study_cli  # noqa: E402
from wattwise.store import RunStore  # noqa: E402

#: A constant 20 W CPU for ten hours, as ``wattwise runs export --format csv`` writes it.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    app = typer.Typer()
    app.add_typer(study_cli.study_app, name="study")
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["study", *args, "--meters", f"replay:{trace}"])

    return invoke


FAST = ("--repeats", "2", "--warmup-batches", "2", "--threads", "1")


def test_split_models_keeps_options_with_their_model() -> None:
    assert study_cli.split_models("mlp, cnn:depth=3,width=32,resnet18,mlp:width=8") == [
        "mlp",
        "cnn:depth=3,width=32",
        "resnet18",
        "mlp:width=8",
    ]
    assert study_cli.split_models(study_cli.DEFAULT_MODELS) == [
        "mlp:depth=0", "mlp", "cnn", "cnn:depth=3,width=32"
    ]  # fmt: skip


def test_architectures_json_and_the_stored_study(cli: Any, tmp_path: Path) -> None:
    store = str(tmp_path / "runs.sqlite")
    r = cli(
        "architectures", "--models", "mlp:depth=0,cnn:depth=1,width=8", "--epochs", "3",
        "--stop", "target:0.05", *FAST, "--store", store, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [m["model"] for m in d["models"]] == ["mlp:depth=0", "cnn:depth=1,width=8"]
    for m in d["models"]:
        assert {"model", "params", "flops", "energy_j", "val_accuracy", "pareto"} <= set(m)
        assert m["energy_source"] == "estimated (replay of cpu-model)"
        assert [run["epochs"] for run in m["trials"]] == [1, 1]  # the target stops each run
    assert d["saving"]["reference"] == d["reference"]
    assert d["method"]["repeats"] == 2 and d["settings"]["stop"] == ["TargetAccuracy(0.05)"]
    with RunStore.open(store) as st:
        study = st.get_study(d["study_id"])
        assert study.kind == "architectures" and len(study.runs) == 4
        assert study.results == d


def test_architectures_table_for_people(cli: Any) -> None:
    r = cli("architectures", "--models", "mlp:depth=0,mlp:depth=1,width=16", "--epochs", "1",
            *FAST)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Pareto front:" in r.stdout and "headline" in r.stdout
    assert "estimated (replay of cpu-model)" in r.stdout and "stored" in r.stdout


def test_layers_json(cli: Any) -> None:
    r = cli(
        "layers", "--model", "cnn:depth=1,width=8", "--window", "0.2", "--profile-steps", "2",
        *FAST, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["kind"] == "layers" and d["model"] == "cnn:depth=1,width=8"
    names = [row["name"] for row in d["layers"]]
    assert "features.0" in names and "(untraced)" in names
    assert sum(row["energy_share"] for row in d["layers"]) == pytest.approx(1.0)
    assert d["by_type"]["conv"] > 0
    assert all(row["energy_method"] == "attributed" for row in d["layers"])


def test_environments_json(cli: Any) -> None:
    r = cli(
        "environments", "--model", "mlp:depth=1,width=16", "--batch-sizes", "32,128",
        "--threads", "1", "--precision", "fp32", "--device", "cpu", "--epochs", "1",
        "--repeats", "2", "--warmup-batches", "0", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [e["label"] for e in d["environments"]] == [
        "threads=1 batch=32 fp32 cpu",
        "threads=1 batch=128 fp32 cpu",
    ]
    assert d["baseline"] == "threads=1 batch=32 fp32 cpu"
    assert d["environments"][0]["versus"] is None
    assert d["environments"][1]["versus"]["reference"] == d["baseline"]
    assert d["recommendation"]["reference"] == d["baseline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("environments", "--model", "mlp", "--precision", "fp16"), "loss scaling"),
        (("environments", "--model", "mlp", "--batch-sizes", "32,big"), "bad batch size"),
        (("layers", "--model", "cnn", "--input-shape", "3,32"), "C,H,W"),
        (("layers", "--model", "cnn", "--input-shape", "1,8,8", "--variants"), "variants"),
        (("architectures", "--models", "mlp,cnn", "--test", "ttest"), "unknown test"),
        (("architectures", "--models", "mlp,cnn", "--stop", "soon"), "unknown stop rule"),
        (("architectures", "--models", "mlp,nonsense"), "unknown model"),
        (("architectures", "--models", "mlp,cnn", "--scope", "galaxy"), "scope"),
    ],
)
def test_errors_are_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    r = cli(*args)
    assert r.exit_code == 2
    assert message in r.output and r.output.startswith("error:")
    assert len(r.output.strip().splitlines()) == 1


def test_cuda_without_a_gpu_is_refused(cli: Any) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = cli("environments", "--model", "mlp", "--device", "cpu,cuda")
    assert r.exit_code == 2 and "no CUDA GPU" in r.output


@pytest.mark.parametrize(
    ("meters", "message"),
    [("replay:/missing.csv", "missing.csv"), ("bogus", "unknown meters 'bogus'")],
)
def test_bad_meters_are_one_line_and_exit_2(
    tmp_path: Path, child_env: dict[str, str], meters: str, message: str
) -> None:
    """End to end through ``python -m wattwise``: refused before any training."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "study", "architectures", "--models", "mlp,cnn",
         "--meters", meters],
        env=dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite")),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "s.sqlite").exists()  # nothing was recorded
