"""MLflow logging of a fit's energy, against a real local MLflow tracking store (SQLite
under ``tmp_path``, named through ``MLFLOW_TRACKING_URI``; MLflow 3 refuses a file store).

Real training on scikit-learn's digits, a replayed constant-power meter (so energies are
exact), and the figures read back through ``MlflowClient``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
mlflow = pytest.importorskip("mlflow")
torch.set_num_threads(1)  # see tests/test_train.py

import typer  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise._errors import ConfigError  # noqa: E402
from wattwise._extras import MissingExtra  # noqa: E402
from wattwise.cli import _train as train_cli  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.train import Callback, EpochRecord, MlflowLogger, TrainState, fit  # noqa: E402
from wattwise.train._recorder import EpochEnergyRecorder  # noqa: E402
from wattwise.workloads import DataSplit, build_model, load_dataset  # noqa: E402

# SQLAlchemy 2.1 deprecates a loader option that MLflow's own store uses: MLflow's, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.MEASURED, "test-sensor"), relative_uncertainty=0.05
)
POWER_W = 10.0


def _ctx(store: bool | str = False) -> LeverContext:
    """A constant 10 W measured CPU for each run."""
    meter = ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 36000.0, POWER_W * 36000.0)])
    return LeverContext(meters=lambda: [meter], store=store)


@pytest.fixture(scope="module")
def digits() -> DataSplit:
    return load_dataset("digits")


def mlp(data: DataSplit) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("mlp:width=32", input_shape=data.input_shape, num_classes=data.num_classes)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, its tables made once (MLflow's migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def client(
    empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    """A fresh SQLite tracking store for this test only; no run is left active after it."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(empty_store, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("WATTWISE_MLFLOW", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is relative to the cwd
    assert mlflow.active_run() is None
    yield MlflowClient()
    while mlflow.active_run() is not None:
        mlflow.end_run()


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def wattwise_data(client: MlflowClient, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    data = client.get_run(run_id).data
    metrics = {k: v for k, v in data.metrics.items() if k.startswith("wattwise.")}
    return metrics, {k: v for k, v in data.tags.items() if k.startswith("wattwise.")}


def test_fit_logs_each_epoch_and_the_totals_to_the_active_run(
    client: MlflowClient, digits: DataSplit
) -> None:
    with mlflow.start_run() as run:
        r = fit(mlp(digits), digits, epochs=3, context=_ctx(), device="cpu", mlflow=True)
        assert mlflow.active_run() is not None  # the user's run: left to the user to end
    rid = run.info.run_id
    energy = history(client, rid, "wattwise.energy_j")
    assert energy == [(e.epoch, pytest.approx(e.energy_j)) for e in r.epochs]
    assert [s for s, _ in energy] == [1, 2, 3]
    for step, power in history(client, rid, "wattwise.power_w"):
        assert power == pytest.approx(POWER_W, rel=1e-6), step
    unc = history(client, rid, "wattwise.energy_uncertainty_j")
    assert unc == [(e.epoch, pytest.approx(0.05 * e.energy_j)) for e in r.epochs]
    cumulative = history(client, rid, "wattwise.cumulative_energy_j")
    assert cumulative[-1][1] == pytest.approx(sum(e.energy_j for e in r.epochs))
    acc = history(client, rid, "wattwise.val_accuracy")
    assert acc == [(e.epoch, pytest.approx(e.val_accuracy)) for e in r.epochs]
    assert len(history(client, rid, "wattwise.predicted_total_energy_j")) == 3

    metrics, tags = wattwise_data(client, rid)
    assert metrics["wattwise.total_energy_j"] == pytest.approx(r.total_energy_j)
    assert metrics["wattwise.total_energy_uncertainty_j"] == pytest.approx(r.total_uncertainty_j)
    assert metrics["wattwise.total_duration_s"] == pytest.approx(r.duration_s)
    assert metrics["wattwise.mean_power_w"] == pytest.approx(POWER_W, rel=1e-6)
    assert "wattwise.predicted_energy_saved_j" not in metrics  # it ran to the end
    assert tags["wattwise.energy_source"] == "measured (test-sensor)" == r.energy_source
    assert tags["wattwise.method"] == "measured"
    assert tags["wattwise.sensors"] == "test-sensor" and "wattwise.models" not in tags
    assert tags["wattwise.run_id"] == r.run_id and tags["wattwise.run_name"] == "train"
    assert tags["wattwise.scope"] == "machine"
    assert tags["wattwise.status"] == "completed"
    assert tags["wattwise.stop_reason"] == "completed: all 3 planned epochs ran"
    assert r.run is not None and r.run.carbon is not None
    assert metrics["wattwise.emissions_g"] == pytest.approx(r.run.carbon.emissions_g)
    assert tags["wattwise.emissions_source"].startswith(f"estimated ({r.run.carbon.zone}, ")
    assert "±" in tags["wattwise.total_energy"]
    assert tags["wattwise.total_energy"].endswith("(one sigma), measured (test-sensor)")


def test_nothing_is_logged_unless_asked(
    client: MlflowClient, digits: DataSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mlflow.start_run() as run:
        fit(mlp(digits), digits, epochs=1, context=_ctx(), device="cpu")
        monkeypatch.setenv("WATTWISE_MLFLOW", "1")
        fit(mlp(digits), digits, epochs=1, context=_ctx(), device="cpu", mlflow=False)
        monkeypatch.setenv("WATTWISE_MLFLOW", "0")
        fit(mlp(digits), digits, epochs=1, context=_ctx(), device="cpu")
    data = client.get_run(run.info.run_id).data
    assert data.metrics == {} and data.params == {}
    assert not [k for k in data.tags if k.startswith("wattwise.")]


def test_a_second_fit_in_the_same_active_run_gets_a_nested_run(
    client: MlflowClient, digits: DataSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTWISE_MLFLOW", "1")  # as a study's or a sweep's fits see it
    with mlflow.start_run() as parent:
        first = fit(mlp(digits), digits, epochs=1, context=_ctx(), name="a")
        second = fit(mlp(digits), digits, epochs=2, context=_ctx(), name="b")
        assert mlflow.active_run().info.run_id == parent.info.run_id  # type: ignore[union-attr]
    pid = parent.info.run_id
    _, tags = wattwise_data(client, pid)
    assert tags["wattwise.run_id"] == first.run_id  # the first fit's, not overwritten
    assert [s for s, _ in history(client, pid, "wattwise.energy_j")] == [1]
    (child,) = client.search_runs(["0"], filter_string=f"tags.mlflow.parentRunId = '{pid}'")
    assert child.info.run_name == "b" and child.info.status == "FINISHED"
    assert child.data.tags["wattwise.run_id"] == second.run_id
    assert [s for s, _ in history(client, child.info.run_id, "wattwise.energy_j")] == [1, 2]


def test_the_environment_variable_can_start_and_end_a_run(
    client: MlflowClient, digits: DataSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTWISE_MLFLOW", "start")
    r = fit(mlp(digits), digits, epochs=2, context=_ctx(), device="cpu", name="digits-mlp")
    assert mlflow.active_run() is None  # started here, so ended here
    runs = client.search_runs(["0"])
    assert len(runs) == 1
    (run,) = runs
    assert run.info.status == "FINISHED" and run.info.run_name == "digits-mlp"
    assert run.data.tags["wattwise.run_id"] == r.run_id
    assert [s for s, _ in history(client, run.info.run_id, "wattwise.energy_j")] == [1, 2]


def test_asking_without_an_active_run_is_one_line_before_any_training(
    client: MlflowClient, digits: DataSplit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    started: list[int] = []

    class Count(Callback):
        def on_fit_start(self, state: TrainState) -> None:
            started.append(1)

    monkeypatch.setenv("WATTWISE_MLFLOW", "1")
    with pytest.raises(ConfigError) as caught:
        fit(mlp(digits), digits, epochs=1, context=_ctx(str(store)), callbacks=[Count()])
    message = str(caught.value)
    assert message.startswith("MLflow logging was asked for, but no MLflow run is active")
    assert "WATTWISE_MLFLOW=start" in message and "\n" not in message
    assert started == [] and not store.exists()  # no training, no wattwise run
    monkeypatch.setenv("WATTWISE_MLFLOW", "maybe")
    with pytest.raises(ConfigError, match=r"^WATTWISE_MLFLOW='maybe' is not understood"):
        fit(mlp(digits), digits, epochs=1, context=_ctx())
    assert client.search_runs(["0"]) == []


def test_a_missing_mlflow_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, digits: DataSplit
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # type: ignore[arg-type]
    line = "MLflow logging needs MLflow: pip install 'wattwise[mlflow]'"
    with pytest.raises(MissingExtra) as caught:
        fit(mlp(digits), digits, epochs=1, context=_ctx(), mlflow=True)
    assert str(caught.value) == line
    with pytest.raises(MissingExtra, match=r"^MLflow logging needs MLflow"):
        EpochEnergyRecorder("r", context=_ctx(), mlflow=True)  # what each callback builds
    monkeypatch.setenv("WATTWISE_MLFLOW", "1")
    with pytest.raises(MissingExtra, match=r"^MLflow logging needs MLflow"):
        EpochEnergyRecorder("r", context=_ctx())
    monkeypatch.delenv("WATTWISE_MLFLOW")
    EpochEnergyRecorder("r", context=_ctx())  # not asked: MLflow is not needed


def test_a_run_id_names_the_run_and_an_unknown_one_is_one_line(
    client: MlflowClient, digits: DataSplit
) -> None:
    target = client.create_run("0").info.run_id
    r = fit(mlp(digits), digits, epochs=1, context=_ctx(), mlflow=MlflowLogger(run_id=target))
    _, tags = wattwise_data(client, target)
    assert tags["wattwise.run_id"] == r.run_id
    assert client.get_run(target).info.status == "RUNNING"  # not ours to end
    with pytest.raises(ConfigError, match=r"^MLflow run nope: ") as caught:
        fit(mlp(digits), digits, epochs=1, context=_ctx(), mlflow=MlflowLogger(run_id="nope"))
    assert "\n" not in str(caught.value)


def test_mlflow_failing_mid_training_warns_once_and_training_goes_on(
    client: MlflowClient, digits: DataSplit
) -> None:
    logger = MlflowLogger(start_run=True)

    class DeleteRun(Callback):  # after the logger has logged epoch 1
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            if record.epoch == 1:
                assert logger.mlflow_run_id is not None
                client.delete_run(logger.mlflow_run_id)

    with pytest.warns(RuntimeWarning, match=r"MLflow logging stopped, training goes on") as seen:
        r = fit(mlp(digits), digits, epochs=3, context=_ctx(), callbacks=[DeleteRun()],
                mlflow=logger)  # fmt: skip
    assert len(seen) == 1 and logger.failure is not None
    assert [e.epoch for e in r.epochs] == [1, 2, 3]  # every epoch trained and measured
    assert mlflow.active_run() is None  # the run started here is off the stack


class _Raise(Callback):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        if record.epoch == 2:
            raise self.exc


def test_an_interrupted_or_failed_fit_ends_the_run_it_started(
    client: MlflowClient, digits: DataSplit
) -> None:
    for exc, status, mlflow_status in [
        (KeyboardInterrupt(), "interrupted", "KILLED"),
        (RuntimeError("boom"), "failed", "FAILED"),
    ]:
        logger = MlflowLogger(start_run=True, run_name=status)
        with pytest.raises(type(exc)):
            fit(mlp(digits), digits, epochs=4, context=_ctx(), callbacks=[_Raise(exc)],
                mlflow=logger)  # fmt: skip
        assert mlflow.active_run() is None
        rid = logger.mlflow_run_id
        assert rid is not None
        assert client.get_run(rid).info.status == mlflow_status
        metrics, tags = wattwise_data(client, rid)
        assert tags["wattwise.status"] == status
        assert [s for s, _ in history(client, rid, "wattwise.energy_j")] == [1, 2]
        # Ctrl-C still logs what was measured (the fit's result); an error, what got logged.
        assert ("wattwise.total_energy_j" in metrics) is (status == "interrupted")


def test_a_fit_inside_a_running_tracker_names_its_window(
    client: MlflowClient, digits: DataSplit
) -> None:
    outer = Tracker("session", meters=_ctx().meters(), store=False)
    with outer, mlflow.start_run() as run:
        r = fit(mlp(digits), digits, epochs=1, tracker=outer, name="fit-a", mlflow=True)
    _, tags = wattwise_data(client, run.info.run_id)
    assert tags["wattwise.run_id"] == outer.run_id == r.run_id
    assert tags["wattwise.window"] == "fit-a" and tags["wattwise.run_name"] == "session"


def test_the_recorder_logs_each_epoch_and_the_epochs_total(client: MlflowClient) -> None:
    """The framework callbacks' common part, inside a running tracker (the total is then
    the epochs', not the tracker's run)."""
    outer = Tracker("outer", meters=_ctx().meters(), store=False)
    logger = MlflowLogger(start_run=True)
    with outer:
        rec = EpochEnergyRecorder("frame", tracker=outer, mlflow=logger)
        rec.begin()
        for n in (1, 2):
            rec.epoch_begin(n)
            rec.epoch_end()
        assert rec.end() is None
    rid = logger.mlflow_run_id
    assert rid is not None and client.get_run(rid).info.status == "FINISHED"
    assert client.get_run(rid).info.run_name == "frame"
    assert history(client, rid, "wattwise.energy_j") == [
        (n, pytest.approx(e.energy_j)) for n, e in zip((1, 2), rec.epochs, strict=True)
    ]
    metrics, tags = wattwise_data(client, rid)
    assert metrics["wattwise.total_energy_j"] == pytest.approx(rec.energy_j)
    assert metrics["wattwise.total_energy_uncertainty_j"] == pytest.approx(0.05 * rec.energy_j)
    assert tags["wattwise.energy_source"] == "measured (test-sensor)"


def _train_app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_cli.train)

    @app.command("other")
    def _other() -> None:  # a second command keeps `train` a named sub-command
        pass

    return app


def test_wattwise_train_logs_to_mlflow_when_the_variable_says_so(
    client: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
        "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
    )
    argv = ["train", "--model", "mlp", "--epochs", "2", "--json", "--meters", f"replay:{trace}",
            "--store", str(tmp_path / "runs.sqlite")]  # fmt: skip
    monkeypatch.setenv("WATTWISE_MLFLOW", "start")
    r = CliRunner().invoke(_train_app(), argv)
    assert r.exit_code == 0, r.output
    d: dict[str, Any] = json.loads(r.stdout)
    (run,) = client.search_runs(["0"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["wattwise.run_id"] == d["run_id"]
    assert run.data.tags["wattwise.energy_source"] == d["energy_source"]
    assert run.data.tags["wattwise.method"] == "estimated"
    assert run.data.tags["wattwise.models"] == "replay of cpu-model"
    assert run.data.metrics["wattwise.total_energy_j"] == pytest.approx(d["total_energy_j"])
    # MLFLOW_RUN_ID (what `mlflow run` sets) names the run to log to.
    target = client.create_run("0").info.run_id
    monkeypatch.setenv("WATTWISE_MLFLOW", "1")
    monkeypatch.setenv("MLFLOW_RUN_ID", target)
    r = CliRunner().invoke(_train_app(), argv)
    assert r.exit_code == 0, r.output
    assert client.get_run(target).data.tags["wattwise.run_id"] == json.loads(r.stdout)["run_id"]
    # Asked for without a run: one line, exit 2, nothing trained.
    monkeypatch.delenv("MLFLOW_RUN_ID")
    r = CliRunner().invoke(_train_app(), argv)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().startswith("error: WATTWISE_MLFLOW=1 logs to the active MLflow run")
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


# The framework callbacks, end to end: each epoch of the framework's own loop reaches the
# active MLflow run with its energy, and the run's totals and provenance at the end.


def _data(n: int = 96) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def check_framework_run(client: MlflowClient, rid: str, cb: Any, epochs: int) -> None:
    measured = cb.epochs
    assert len(measured) == epochs
    assert history(client, rid, "wattwise.energy_j") == [
        (n, pytest.approx(w.energy_j)) for n, w in enumerate(measured, start=1)
    ]
    for _, power in history(client, rid, "wattwise.power_w"):
        assert power == pytest.approx(POWER_W, rel=1e-6)
    metrics, tags = wattwise_data(client, rid)
    run = cb.recorder.tracker.result
    assert run is not None and tags["wattwise.run_id"] == run.run_id
    assert metrics["wattwise.total_energy_j"] == pytest.approx(run.energy_j)
    assert tags["wattwise.energy_source"] == "measured (test-sensor)"
    assert tags["wattwise.status"] == "completed"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
def test_lightning_callback_logs_to_the_active_mlflow_run(
    client: MlflowClient, tmp_path: Path
) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from wattwise.train.lightning import EnergyCallback

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch: Any, _: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    cb = EnergyCallback("lightning-run", context=_ctx(), mlflow=True)
    trainer = pl.Trainer(
        max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        default_root_dir=str(tmp_path), num_sanity_val_steps=0,
    )  # fmt: skip
    with mlflow.start_run() as run:
        trainer.fit(Tiny(), loader, loader)
    check_framework_run(client, run.info.run_id, cb, 2)


@pytest.mark.slow
def test_keras_callback_logs_to_the_active_mlflow_run(client: MlflowClient) -> None:
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend in this process")
    from wattwise.train.keras import EnergyCallback

    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cb = EnergyCallback("keras-run", context=_ctx(), mlflow=True)
    with mlflow.start_run() as run:
        model.fit(x.numpy(), y.numpy(), epochs=3, batch_size=32, verbose=0, callbacks=[cb])
    check_framework_run(client, run.info.run_id, cb, 3)


@pytest.mark.slow
def test_hf_trainer_callback_logs_to_the_active_mlflow_run(
    client: MlflowClient, tmp_path: Path
) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from wattwise.train.hf import EnergyCallback

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def forward(self, x: Any, labels: Any = None) -> dict[str, Any]:
            logits = self.net(x)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
            return out

    x, y = _data()
    rows = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=32,
        report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
        disable_tqdm=True,
    )  # fmt: skip
    cb = EnergyCallback("hf-run", context=_ctx(), mlflow=True)
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=rows, callbacks=[cb])
    with mlflow.start_run() as run:
        trainer.train()
    check_framework_run(client, run.info.run_id, cb, 2)


@pytest.mark.slow
def test_wattwise_train_without_mlflow_installed_says_so_in_one_line(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys\nsys.modules['mlflow'] = None\n"  # as on a machine without it
        "sys.argv = ['wattwise', 'train', '--model', 'mlp', '--epochs', '1']\n"
        "from wattwise.cli import main\nmain()\n"
    )
    store = tmp_path / "store" / "runs.sqlite"
    env = {**child_env, "WATTWISE_MLFLOW": "1", "WATTWISE_STORE": str(store)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["error: MLflow logging needs MLflow: pip install 'wattwise[mlflow]'"]
    assert not store.exists()  # nothing trained, no run stored
