"""Callbacks of the training loop and the state they see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from wattwise.tracking._tracker import Tracker
    from wattwise.train._records import EpochRecord, FitResult

__all__ = ["Callback", "TrainState"]


@dataclass
class TrainState:
    """The loop's state, as callbacks see it.

    Attributes:
        model: the model being trained.
        optimizer: its optimizer.
        tracker: the running tracker (``tracker.energy_j`` is live).
        planned_epochs: epochs planned.
        epoch: the current (1-based) epoch; 0 before the first.
        batch: batches done in the current epoch.
        batches_per_epoch: training batches per epoch.
        history: the finished epochs.
        hparams: the run's hyperparameters (model, lr, batch size...).
        stop_request: set through :meth:`request_stop`.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    tracker: Tracker
    planned_epochs: int
    epoch: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    stop_request: tuple[str, str] | None = None

    def request_stop(self, reason: str, *, rule: str = "callback") -> None:
        """Ask the loop to stop after the current epoch (``reason``: one line)."""
        self.stop_request = (rule, reason)


class Callback:
    """Hooks into :func:`wattwise.train.fit`. Override the ones you need."""

    def on_fit_start(self, state: TrainState) -> None:
        """Before the first epoch (the tracker is running)."""

    def on_batch_end(self, state: TrainState) -> None:
        """After each training batch (keep it cheap: it runs inside the epoch's window)."""

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        """After each epoch's training and validation, with its energy."""

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        """After the last epoch, with the result."""
