"""Keras 3 callback: each epoch's energy, into the run store and the epoch's logs.

Needs ``keras`` >= 3 (the ``keras`` extra) with any backend. Keras validates before
``on_epoch_end``, so an epoch's energy includes its validation. The figures are added to
the epoch's logs as ``energy_j`` and ``power_w``, so ``History`` keeps them.

With stopping rules (``stop=[LearningCurve()]``), each epoch's energy and its logged
``val_accuracy`` (``monitor``) and ``val_loss`` are shown to the rules, and the first
reason stops training (``model.stop_training``); the reason is kept as ``stop_decision``
and stored with the run's epochs.

Example::

    model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[EnergyCallback("my-run")])
    model.fit(..., epochs=60, callbacks=[EnergyCallback("my-run", stop=[LearningCurve()])])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wattwise._extras import require as _require

_require("wattwise.train.keras", "keras", ["keras"])

import keras  # type: ignore[import-untyped,unused-ignore]

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._mlflow import MlflowLogger
from wattwise.train._recorder import EpochEnergyRecorder
from wattwise.train._records import StopDecision
from wattwise.train._stopping import StopRule

__all__ = ["EnergyCallback"]


class EnergyCallback(keras.callbacks.Callback):  # type: ignore[misc,unused-ignore]
    """Measure each Keras epoch as the tracker window ``epoch-N``.

    Args:
        name: the run's name.
        tracker: a tracker to use (default: a new one, started when training starts).
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        stop: stopping rules; the first to give a reason stops training.
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
        stop: Sequence[StopRule] = (),
        monitor: str = "val_accuracy",
        loss_monitor: str = "val_loss",
        mlflow: bool | MlflowLogger | None = None,
    ) -> None:
        super().__init__()
        self.recorder = EpochEnergyRecorder(
            name, tracker=tracker, context=context, stop=stop, mlflow=mlflow
        )
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

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.recorder.begin(self.params.get("epochs"))

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.recorder.epoch_begin(epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        result = self.recorder.epoch_end()
        if result is not None and logs is not None:
            logs["energy_j"] = result.energy_j
            logs["power_w"] = result.energy_j / result.duration_s if result.duration_s else 0.0
        if result is not None and self.recorder.stop:
            acc, loss = (logs or {}).get(self.monitor), (logs or {}).get(self.loss_monitor)
            decision = self.recorder.check_stop(
                result,
                planned_epochs=int(self.params.get("epochs") or 0),
                val_accuracy=None if acc is None else float(acc),
                val_loss=None if loss is None else float(loss),
            )
            if decision is not None:
                self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.recorder.end()
