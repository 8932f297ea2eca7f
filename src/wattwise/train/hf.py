"""Hugging Face ``Trainer`` callback: each epoch's energy, into the run store.

Needs ``transformers`` (the ``hf`` extra). The Trainer evaluates *after*
``on_epoch_end``, so here an epoch's energy covers training only; the evaluation falls
between two epoch windows (it is still in the run's total). Each epoch's energy is also
appended to ``state.log_history`` as ``{"epoch": N, "energy/epoch_j": ...}``.

With stopping rules (``stop=[LearningCurve()]``), the Trainer must evaluate every epoch
(``eval_strategy="epoch"``) with a ``compute_metrics`` giving ``accuracy``: after each
epoch's evaluation its energy and ``eval_accuracy`` (``monitor``) and ``eval_loss`` are
shown to the rules, and the first reason stops training
(``control.should_training_stop``); the reason is kept as ``stop_decision`` and stored
with the run's epochs.

Example::

    Trainer(model=model, args=args, train_dataset=ds, callbacks=[EnergyCallback("my-run")])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wattwise._extras import require as _require

_require("wattwise.train.hf", "hf", ["transformers"])

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._mlflow import MlflowLogger
from wattwise.train._recorder import EpochEnergyRecorder
from wattwise.train._records import StopDecision
from wattwise.train._stopping import StopRule

__all__ = ["EnergyCallback"]


class EnergyCallback(TrainerCallback):
    """Measure each Trainer epoch as the tracker window ``epoch-N``.

    Args:
        name: the run's name.
        tracker: a tracker to use (default: a new one, started when training starts).
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        stop: stopping rules, asked after each epoch's evaluation; the first to give a
            reason stops training.
        monitor: the evaluation metric the rules see as validation accuracy (0..1).
        loss_monitor: the evaluation metric the rules see as validation loss.
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
        monitor: str = "eval_accuracy",
        loss_monitor: str = "eval_loss",
        mlflow: bool | MlflowLogger | None = None,
    ) -> None:
        self.recorder = EpochEnergyRecorder(
            name, tracker=tracker, context=context, stop=stop, mlflow=mlflow
        )
        self.monitor = monitor
        self.loss_monitor = loss_monitor
        self._epoch = 0
        self._pending: WindowResult | None = None

    @property
    def stop_decision(self) -> StopDecision | None:
        """Why the rules stopped training (None: they did not)."""
        return self.recorder.stop_decision

    @staticmethod
    def _planned(args: TrainingArguments, state: TrainerState) -> int:
        return math.ceil(state.num_train_epochs or args.num_train_epochs)

    @property
    def epochs(self) -> list[WindowResult]:
        """The measured epochs."""
        return self.recorder.epochs

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.recorder.begin(self._planned(args, state))
        self._epoch = 0
        self._pending = None

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._epoch += 1
        self.recorder.epoch_begin(self._epoch)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        result = self.recorder.epoch_end()
        if result is not None:
            state.log_history.append({"epoch": self._epoch, "energy/epoch_j": result.energy_j})
            self._pending = result

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        result, self._pending = self._pending, None
        if result is None or not self.recorder.stop:
            return
        acc = (metrics or {}).get(self.monitor)
        loss = (metrics or {}).get(self.loss_monitor)
        decision = self.recorder.check_stop(
            result,
            planned_epochs=self._planned(args, state),
            val_accuracy=None if acc is None else float(acc),
            val_loss=None if loss is None else float(loss),
        )
        if decision is not None:
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.recorder.end()
