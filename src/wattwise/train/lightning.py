"""PyTorch Lightning callback: each training epoch's energy, into the run store.

Needs ``lightning`` (the ``lightning`` extra). Lightning validates at the end of a training
epoch before ``on_train_epoch_end``, so an epoch's energy includes its validation. The
energy is also logged as ``energy/epoch_j`` through the module, so it reaches the
trainer's loggers (TensorBoard, CSV...).

With stopping rules (``stop=[LearningCurve()]``, any :class:`~wattwise.train.StopRule`),
each epoch's energy and the logged validation metric ``monitor`` (``val_accuracy``; and
``val_loss`` when logged) are shown to the rules after the epoch, and the first reason
stops the trainer (``trainer.should_stop``); the reason is kept as ``stop_decision`` and
stored with the run's epochs.

Example::

    trainer = lightning.Trainer(max_epochs=10, callbacks=[EnergyCallback("my-run")])
    trainer = lightning.Trainer(
        max_epochs=60, callbacks=[EnergyCallback("my-run", stop=[LearningCurve()])]
    )
"""

from __future__ import annotations

from wattwise._extras import require as _require

_require("wattwise.train.lightning", "lightning", ["lightning"])

from collections.abc import Sequence

import lightning.pytorch as pl

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._mlflow import MlflowLogger
from wattwise.train._recorder import EpochEnergyRecorder
from wattwise.train._records import StopDecision
from wattwise.train._stopping import StopRule

__all__ = ["EnergyCallback"]


class EnergyCallback(pl.Callback):
    """Measure each Lightning training epoch as the tracker window ``epoch-N``.

    Args:
        name: the run's name.
        tracker: a tracker to use (default: a new one, started at the start of training).
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        log: also log ``energy/epoch_j`` and ``power/mean_w`` through the module.
        stop: stopping rules; the first to give a reason stops the trainer.
        monitor: the logged validation accuracy the rules see (0..1).
        loss_monitor: the logged validation loss the rules see (when logged).
        mlflow: log each epoch's energy and the totals with their provenance to the
            active MLflow run (``True``, or a :class:`~wattwise.train.MlflowLogger`);
            None (default): as ``WATTWISE_MLFLOW`` says (unset: nothing is logged).
    """

    def __init__(
        self,
        name: str = "train",
        *,
        tracker: Tracker | None = None,
        context: LeverContext | None = None,
        log: bool = True,
        stop: Sequence[StopRule] = (),
        monitor: str = "val_accuracy",
        loss_monitor: str = "val_loss",
        mlflow: bool | MlflowLogger | None = None,
    ) -> None:
        super().__init__()
        self.recorder = EpochEnergyRecorder(
            name, tracker=tracker, context=context, stop=stop, mlflow=mlflow
        )
        self.log = log
        self.monitor = monitor
        self.loss_monitor = loss_monitor

    @property
    def stop_decision(self) -> StopDecision | None:
        """Why the rules stopped training (None: they did not)."""
        return self.recorder.stop_decision

    @property
    def epochs(self) -> list[WindowResult]:
        """The measured epochs."""
        return self.recorder.epochs

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.begin(trainer.max_epochs)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.epoch_begin(trainer.current_epoch + 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        result = self.recorder.epoch_end()
        if result is not None and self.log:
            pl_module.log("energy/epoch_j", result.energy_j)
            if result.duration_s > 0:
                pl_module.log("power/mean_w", result.energy_j / result.duration_s)
        if result is not None and self.recorder.stop:
            metrics = trainer.callback_metrics
            acc, loss = metrics.get(self.monitor), metrics.get(self.loss_monitor)
            decision = self.recorder.check_stop(
                result,
                planned_epochs=trainer.max_epochs or 0,
                val_accuracy=None if acc is None else float(acc),
                val_loss=None if loss is None else float(loss),
            )
            if decision is not None:
                trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.end()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.recorder.end(failed=True)
