"""Framework callbacks (Lightning, Keras 3 on the torch backend, HF Trainer) on real,
tiny training runs: each epoch becomes a tracker window with the replayed meter's energy.
Each test is skipped where its framework is not installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make an epoch 100x slower: one thread keeps the suite fast everywhere.
torch.set_num_threads(1)

from wattwise._records import RunStatus  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.train._recorder import EpochEnergyRecorder  # noqa: E402

CPU = Component("cpu", ComponentKind.CPU, Source(Method.MEASURED, "replayed-sensor"))


def _ctx(*meters: ReplayMeter) -> LeverContext:
    """These meters for each run, and no store."""
    return LeverContext(meters=lambda: list(meters), store=False)


def meter(power_w: float = 8.0) -> ReplayMeter:
    return ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, power_w * 36000.0)])


def data(n: int = 96) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return x, y


def check_epochs(epochs: list[Any], n: int, power_w: float = 8.0) -> None:
    assert len(epochs) == n
    assert [e.name for e in epochs] == [f"epoch-{i}" for i in range(1, n + 1)]
    for e in epochs:
        assert e.energy_j == pytest.approx(power_w * e.duration_s, rel=1e-6)
        assert e.energy_j > 0


def test_recorder_runs_its_own_tracker_or_uses_a_running_one() -> None:
    rec = EpochEnergyRecorder("r", context=_ctx(meter()))
    rec.begin()
    rec.epoch_begin(1)
    rec.epoch_begin(2)  # closes epoch 1
    run = rec.end()
    check_epochs(rec.epochs, 2)
    assert run is not None and run.status is RunStatus.COMPLETED
    outer = Tracker("outer", meters=[meter()], store=False)
    with outer:
        rec2 = EpochEnergyRecorder(tracker=outer)
        rec2.begin()
        rec2.epoch_begin(1)
        assert rec2.epoch_end() is not None
        assert rec2.end() is None  # not ours to stop
        assert outer.running
    assert outer.result is not None and [w.path for w in outer.result.windows] == ["epoch-1"]


@pytest.mark.slow
# Lightning's own warnings (a deprecated torch pytree call, advice on data workers) are
# about Lightning here, not about the callback.
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
def test_lightning_callback_measures_each_epoch_including_validation(tmp_path: Path) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from wattwise.train.lightning import EnergyCallback

    order: list[str] = []

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

        def on_validation_epoch_end(self) -> None:
            order.append(f"val-end-{len(cb.epochs)}")

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    cb = EnergyCallback("lightning-run", context=_ctx(meter()))
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
    )
    trainer.fit(Tiny(), loader, loader)
    check_epochs(cb.epochs, 2)
    # Validation of epoch N ended while epoch N's window was still open.
    assert order == ["val-end-0", "val-end-1"]
    assert float(trainer.callback_metrics["energy/epoch_j"]) == pytest.approx(
        cb.epochs[-1].energy_j, rel=1e-5
    )
    tracker = cb.recorder.tracker
    assert tracker is not None and tracker.result is not None
    assert tracker.result.status is RunStatus.COMPLETED


@pytest.mark.slow
def test_keras_callback_puts_energy_in_the_history() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend in this process")
    from wattwise.train.keras import EnergyCallback

    x, y = data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    cb = EnergyCallback("keras-run", context=_ctx(meter()))
    history = model.fit(
        x.numpy(), y.numpy(), epochs=3, batch_size=32, validation_split=0.25, verbose=0,
        callbacks=[cb],
    )  # fmt: skip
    check_epochs(cb.epochs, 3)
    assert history.history["energy_j"] == pytest.approx([e.energy_j for e in cb.epochs])
    assert "val_loss" in history.history


@pytest.mark.slow
def test_hf_trainer_callback_measures_each_epoch(tmp_path: Path) -> None:
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

    x, y = data()
    rows = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=32,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    cb = EnergyCallback("hf-run", context=_ctx(meter()))
    trainer = transformers.Trainer(model=Tiny(), args=args, train_dataset=rows, callbacks=[cb])
    trainer.train()
    check_epochs(cb.epochs, 2)
    logged = [h["energy/epoch_j"] for h in trainer.state.log_history if "energy/epoch_j" in h]
    assert logged == pytest.approx([e.energy_j for e in cb.epochs])


# Stopping rules on the frameworks' own loops: the callback stops training and says why.
# Plateau(patience=1, min_delta=1.0) can never see an improvement of more than 1, so it
# stops after epoch 2 of 6, whatever the accuracies; the curve rule is tested on its own in
# tests/test_train_curve.py (here it only has to be accepted and asked).


def _stop_rules() -> list[Any]:
    from wattwise.train import LearningCurve, Plateau

    return [LearningCurve(tolerance=1e-9), Plateau(patience=1, min_delta=1.0)]


def _check_stopped(cb: Any, epochs_run: int) -> None:
    assert len(cb.epochs) == epochs_run == 2
    d = cb.stop_decision
    assert d is not None and d.rule == "plateau" and d.epoch == 2
    assert d.reason.startswith("plateau: validation accuracy has not improved")
    assert len(cb.recorder.history) == 2
    assert all(0.0 <= e.val_accuracy <= 1.0 for e in cb.recorder.history)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
@pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
def test_lightning_callback_stops_the_trainer(tmp_path: Path) -> None:
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
            acc = (self.net(x).argmax(1) == y).float().mean()
            self.log("val_accuracy", acc)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    cb = EnergyCallback("lightning-stop", context=_ctx(meter()), stop=_stop_rules())
    trainer = pl.Trainer(
        max_epochs=6,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
        num_sanity_val_steps=0,
    )
    trainer.fit(Tiny(), loader, loader)
    _check_stopped(cb, trainer.current_epoch)
    assert trainer.should_stop


@pytest.mark.slow
def test_keras_callback_stops_training() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend in this process")
    from wattwise.train.keras import EnergyCallback

    x, y = data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = EnergyCallback("keras-stop", context=_ctx(meter()), stop=_stop_rules())
    history = model.fit(
        x.numpy(), y.numpy(), epochs=6, batch_size=32, validation_split=0.25, verbose=0,
        callbacks=[cb],
    )  # fmt: skip
    _check_stopped(cb, len(history.history["loss"]))
    logged = [float(a) for a in history.history["val_accuracy"]]
    assert [e.val_accuracy for e in cb.recorder.history] == pytest.approx(logged)


@pytest.mark.slow
def test_hf_trainer_callback_stops_training(tmp_path: Path) -> None:
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

    def accuracy(p: Any) -> dict[str, float]:
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    x, y = data()
    rows = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=6,
        per_device_train_batch_size=32,
        eval_strategy="epoch",
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    cb = EnergyCallback("hf-stop", context=_ctx(meter()), stop=_stop_rules())
    trainer = transformers.Trainer(
        model=Tiny(), args=args, train_dataset=rows, eval_dataset=rows,
        compute_metrics=accuracy, callbacks=[cb],
    )  # fmt: skip
    trainer.train()
    _check_stopped(cb, round(trainer.state.epoch or 0))
    evals = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    assert [e.val_accuracy for e in cb.recorder.history] == pytest.approx(evals)
