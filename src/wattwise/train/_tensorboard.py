"""TensorBoard logging of a fit: per-epoch energy, power and validation, hparams at the end.

Scalars (step = epoch): ``energy/epoch_j``, ``energy/total_j`` (the fit's energy so far),
``power/mean_w``, ``accuracy/val``, ``loss/val``, ``loss/train``. At the end the run's
hyperparameters go into the same run directory with the metrics
``hparam/final_val_accuracy``, ``hparam/total_energy_j`` and ``hparam/energy_saved_j``,
so TensorBoard's HPARAMS tab compares runs on accuracy and energy together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from wattwise._errors import ConfigError
from wattwise.train._callbacks import Callback, TrainState
from wattwise.train._records import EpochRecord, FitResult

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["TensorBoardCallback"]


def _hparam_value(v: Any) -> bool | int | float | str:
    return v if isinstance(v, bool | int | float | str) else str(v)


class TensorBoardCallback(Callback):
    """Write a fit's energy and validation figures to TensorBoard event files.

    Args:
        log_dir: the run's directory (created if needed).
    """

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._writer: SummaryWriter | None = None
        self._spent_j = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "TensorBoard logging needs the tensorboard package: pip install tensorboard"
            ) from None
        try:
            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        except OSError as exc:
            raise ConfigError(f"cannot write TensorBoard logs to {self.log_dir}: {exc}") from None
        self._spent_j = 0.0

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        w = self._writer
        if w is None:
            return
        self._spent_j += record.energy_j
        step = record.epoch
        w.add_scalar("energy/epoch_j", record.energy_j, step)
        w.add_scalar("energy/total_j", self._spent_j, step)
        w.add_scalar("power/mean_w", record.mean_power_w, step)
        w.add_scalar("accuracy/val", record.val_accuracy, step)
        w.add_scalar("loss/val", record.val_loss, step)
        w.add_scalar("loss/train", record.train_loss, step)
        w.flush()

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        w = self._writer
        if w is None:
            return
        metrics = {
            "hparam/final_val_accuracy": float(result.final_val_accuracy or 0.0),
            "hparam/total_energy_j": result.total_energy_j,
            "hparam/energy_saved_j": result.energy_saved_j,
        }
        params = {k: _hparam_value(v) for k, v in state.hparams.items()}
        params["energy_source"] = result.energy_source
        params["stop_rule"] = result.stop.rule if result.stop else "none"
        # run_name "." keeps the hparams in this run's directory, beside its scalars.
        w.add_hparams(params, metrics, run_name=".", global_step=len(result.epochs))
        w.close()
        self._writer = None
