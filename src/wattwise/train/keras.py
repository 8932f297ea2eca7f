"""Keras 3 callback: each epoch's energy, into the run store and the epoch's logs.

Needs ``keras`` >= 3 (the ``keras`` extra) with any backend. Keras validates before
``on_epoch_end``, so an epoch's energy includes its validation. The figures are added to
the epoch's logs as ``energy_j`` and ``power_w``, so ``History`` keeps them.

Example::

    model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[EnergyCallback("my-run")])
"""

from __future__ import annotations

from typing import Any

from wattwise._extras import require as _require

_require("wattwise.train.keras", "keras", ["keras"])

import keras  # type: ignore[import-untyped,unused-ignore]

from wattwise._records import WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker
from wattwise.train._recorder import EpochEnergyRecorder

__all__ = ["EnergyCallback"]


class EnergyCallback(keras.callbacks.Callback):  # type: ignore[misc,unused-ignore]
    """Measure each Keras epoch as the tracker window ``epoch-N``.

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
        super().__init__()
        self.recorder = EpochEnergyRecorder(name, tracker=tracker, context=context)

    @property
    def epochs(self) -> list[WindowResult]:
        """The measured epochs."""
        return self.recorder.epochs

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.recorder.begin()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.recorder.epoch_begin(epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        result = self.recorder.epoch_end()
        if result is not None and logs is not None:
            logs["energy_j"] = result.energy_j
            logs["power_w"] = result.energy_j / result.duration_s if result.duration_s else 0.0

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.recorder.end()
