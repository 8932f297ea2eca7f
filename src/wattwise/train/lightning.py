"""PyTorch Lightning callback: each training epoch's energy, into the run store.

Needs ``lightning`` (the ``lightning`` extra). Lightning validates at the end of a training
epoch before ``on_train_epoch_end``, so an epoch's energy includes its validation. The
energy is also logged as ``energy/epoch_j`` through the module, so it reaches the
trainer's loggers (TensorBoard, CSV...).

Example::

    trainer = lightning.Trainer(max_epochs=10, callbacks=[EnergyCallback("my-run")])
"""

from __future__ import annotations

from wattwise._extras import require as _require

_require("wattwise.train.lightning", "lightning", ["lightning"])

import lightning.pytorch as pl

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._recorder import EpochEnergyRecorder

__all__ = ["EnergyCallback"]


class EnergyCallback(pl.Callback):
    """Measure each Lightning training epoch as the tracker window ``epoch-N``.

    Args:
        name: the run's name.
        tracker: a tracker to use (default: a new one, started at the start of training).
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        log: also log ``energy/epoch_j`` and ``power/mean_w`` through the module.
    """

    def __init__(
        self,
        name: str = "train",
        *,
        tracker: Tracker | None = None,
        context: LeverContext | None = None,
        log: bool = True,
    ) -> None:
        super().__init__()
        self.recorder = EpochEnergyRecorder(name, tracker=tracker, context=context)
        self.log = log

    @property
    def epochs(self) -> list[WindowResult]:
        """The measured epochs."""
        return self.recorder.epochs

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.begin()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.epoch_begin(trainer.current_epoch + 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        result = self.recorder.epoch_end()
        if result is not None and self.log:
            pl_module.log("energy/epoch_j", result.energy_j)
            if result.duration_s > 0:
                pl_module.log("power/mean_w", result.energy_j / result.duration_s)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.recorder.end()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.recorder.end(failed=True)
