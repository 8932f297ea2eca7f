"""Hugging Face ``Trainer`` callback: each epoch's energy, into the run store.

Needs ``transformers`` (the ``hf`` extra). The Trainer evaluates *after*
``on_epoch_end``, so here an epoch's energy covers training only; the evaluation falls
between two epoch windows (it is still in the run's total). Each epoch's energy is also
appended to ``state.log_history`` as ``{"epoch": N, "energy/epoch_j": ...}``.

Example::

    Trainer(model=model, args=args, train_dataset=ds, callbacks=[EnergyCallback("my-run")])
"""

from __future__ import annotations

from typing import Any

from wattwise._extras import require as _require

_require("wattwise.train.hf", "hf", ["transformers"])

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._recorder import EpochEnergyRecorder

__all__ = ["EnergyCallback"]


class EnergyCallback(TrainerCallback):
    """Measure each Trainer epoch as the tracker window ``epoch-N``.

    Args:
        name: the run's name.
        tracker: a tracker to use (default: a new one, started when training starts).
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
    """

    def __init__(
        self,
        name: str = "train",
        *,
        tracker: Tracker | None = None,
        context: LeverContext | None = None,
    ) -> None:
        self.recorder = EpochEnergyRecorder(name, tracker=tracker, context=context)
        self._epoch = 0

    @property
    def epochs(self) -> list[WindowResult]:
        """The measured epochs."""
        return self.recorder.epochs

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.recorder.begin()
        self._epoch = 0

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

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.recorder.end()
