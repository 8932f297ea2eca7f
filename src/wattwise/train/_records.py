"""Frozen records of a training run: epochs, the energy prediction, why it stopped.

Their JSON (the ``wattwise train --json`` output and the stored training history) comes
from :class:`~wattwise._records.Record`: field names are the keys. The per-component
energy of an epoch and the tracked run are in-memory handles: the run store holds them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from wattwise._records import ComponentEnergy, RunResult
from wattwise._records.base import Record
from wattwise._units import format_energy

__all__ = [
    "EnergyPrediction",
    "EpochRecord",
    "FitResult",
    "StopDecision",
    "TrainingInterrupted",
]


@dataclass(frozen=True)
class EnergyPrediction(Record):
    """A prediction of a planned run's total energy from the epochs measured so far.

    ``total_j = measured_j + remaining_epochs * epoch_mean_j``. The per-epoch mean comes
    from the *steady* epochs: epoch 1 is left out as warm-up (first-time allocation, kernel
    selection, caches) when it costs more than the later epochs by more than the noise. Its
    uncertainty adds the epoch-to-epoch spread of the remaining epochs and the uncertainty
    of the mean; while fewer than three steady epochs are known, the spread is pooled with
    an assumed prior (see :func:`wattwise.train.predict_total`).

    This is a prediction, not a measurement; ``sigma_j`` is the extrapolation's one-sigma
    uncertainty only. The meters' own (systematic) uncertainty applies to the measured and
    the predicted energy alike and is not in it.

    Attributes:
        total_j: predicted energy of the whole planned run, in J.
        sigma_j: one-sigma uncertainty of ``total_j``, in J.
        measured_j: energy already measured (epochs and overhead), in J.
        measured_epochs: epochs measured.
        planned_epochs: epochs planned.
        epoch_mean_j: predicted energy of one more epoch, in J.
        epoch_sd_j: epoch-to-epoch standard deviation used, in J.
        basis_epochs: the epochs the mean was taken over (1-based).
        warmup_left_out: whether epoch 1 was left out as warm-up.
        spread_assumed: whether the spread leans on the prior (too few steady epochs).
        source: provenance of the measured epochs it extrapolates.
    """

    total_j: float
    sigma_j: float
    measured_j: float
    measured_epochs: int
    planned_epochs: int
    epoch_mean_j: float
    epoch_sd_j: float
    basis_epochs: tuple[int, ...]
    warmup_left_out: bool
    spread_assumed: bool
    source: str

    kind: ClassVar[str] = "prediction"
    derived: ClassVar[tuple[str, ...]] = ("description",)

    @property
    def description(self) -> str:
        """:meth:`describe`'s line."""
        return self.describe()

    @property
    def remaining_epochs(self) -> int:
        """Epochs still to run in the plan."""
        return self.planned_epochs - self.measured_epochs

    @property
    def next_epoch_sigma_j(self) -> float:
        """One-sigma uncertainty of the next epoch's energy, in J (spread and mean's error)."""
        return self.epoch_sd_j * math.sqrt(1.0 + 1.0 / len(self.basis_epochs))

    def describe(self) -> str:
        """One line: what was predicted, from what."""
        basis = _span(self.basis_epochs)
        warm = ", epoch 1 left out as warm-up" if self.warmup_left_out else ""
        assumed = ", spread partly assumed" if self.spread_assumed else ""
        if self.measured_epochs == 1:
            warm = ", warm-up included: likely high"
        return (
            f"predicted from {self.measured_epochs} measured epoch(s) "
            f"({self.source}): {self.remaining_epochs} more x "
            f"{format_energy(self.epoch_mean_j)} "
            f"(mean of epoch {basis}{warm}{assumed})"
        )


def _span(epochs: tuple[int, ...]) -> str:
    if not epochs:
        return "-"
    if len(epochs) > 1 and epochs == tuple(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}-{epochs[-1]}"
    return ",".join(str(e) for e in epochs)


@dataclass(frozen=True)
class EpochRecord(Record):
    """One epoch: its energy (training and validation), time and validation metrics.

    Attributes:
        epoch: 1-based epoch number.
        energy_j: energy of the epoch (training + validation), in J.
        uncertainty_j: one-sigma uncertainty of ``energy_j`` from the meters, in J.
        duration_s: wall-clock length of the epoch, in s.
        train_energy_j: energy of the training pass, in J.
        eval_energy_j: energy of the validation pass, in J.
        train_loss: mean training loss over the epoch's batches.
        val_loss: mean validation loss.
        val_accuracy: validation accuracy (0..1).
        source: where ``energy_j`` comes from (measured by which sensor, or estimated).
        components: per-component energy of the epoch.
        prediction: the planned run's total predicted after this epoch.
    """

    epoch: int
    energy_j: float
    uncertainty_j: float
    duration_s: float
    train_energy_j: float
    eval_energy_j: float
    train_loss: float
    val_loss: float
    val_accuracy: float
    source: str
    components: tuple[ComponentEnergy, ...] = field(default=(), metadata={"json": False})
    prediction: EnergyPrediction | None = None

    derived: ClassVar[tuple[str, ...]] = (
        "mean_power_w",
        "predicted_full_energy_j",
        "predicted_full_energy_sigma_j",
    )

    @property
    def predicted_full_energy_j(self) -> float | None:
        """The planned run's energy predicted after this epoch, in J (None: no prediction)."""
        return self.prediction.total_j if self.prediction else None

    @property
    def predicted_full_energy_sigma_j(self) -> float | None:
        """Its one-sigma uncertainty, in J."""
        return self.prediction.sigma_j if self.prediction else None

    @property
    def mean_power_w(self) -> float:
        """Mean power over the epoch, in W."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True)
class StopDecision(Record):
    """Why a run stopped before its planned epochs.

    Attributes:
        rule: the rule or callback that fired (``target``, ``plateau``, ``budget``...).
        reason: one line, with the figures that made it fire.
        epoch: the last epoch that ran.
    """

    rule: str
    reason: str
    epoch: int


@dataclass(frozen=True)
class FitResult(Record):
    """What :func:`wattwise.train.fit` did and what it cost.

    Attributes:
        epochs: the epochs that ran.
        planned_epochs: the epochs planned.
        stop: why it stopped early, or None when every planned epoch ran.
        total_energy_j: energy of the whole fit (epochs and the work between them), in J.
        total_uncertainty_j: one-sigma uncertainty of ``total_energy_j`` from the meters, in J.
        energy_source: provenance of ``total_energy_j``.
        duration_s: wall-clock length of the fit, in s.
        prediction: the full planned run's energy predicted from the measured epochs, when
            the run stopped early (None otherwise: then nothing needs predicting).
        energy_saved_j: ``prediction.total_j - total_energy_j`` (a prediction-based figure),
            0 when the run was not stopped early.
        device: where it trained (``cpu``, ``cuda:0``).
        run_id: the tracker's run id.
        run: the tracked run, when ``fit`` owned its tracker.
        interrupted: the run was interrupted (Ctrl-C); ``epochs`` are those it completed,
            the totals include the part of the epoch that was cut short.
    """

    epochs: tuple[EpochRecord, ...]
    planned_epochs: int
    stop: StopDecision | None
    total_energy_j: float
    total_uncertainty_j: float
    energy_source: str
    duration_s: float
    prediction: EnergyPrediction | None
    energy_saved_j: float
    device: str
    run_id: str
    run: RunResult | None = field(default=None, metadata={"json": False})
    interrupted: bool = False

    kind: ClassVar[str] = "training"
    derived: ClassVar[tuple[str, ...]] = (
        "stop_rule",
        "stop_reason",
        "stopped_early",
        "predicted_full_energy_j",
        "predicted_full_energy_sigma_j",
        "predicted_full_energy_source",
        "energy_saved_source",
        "final_val_accuracy",
        "final_val_loss",
        "best_val_accuracy",
    )

    @property
    def stop_rule(self) -> str | None:
        """The rule that stopped the run early, or None."""
        return self.stop.rule if self.stop else None

    @property
    def stopped_early(self) -> bool:
        """Whether a rule stopped the run before its planned epochs."""
        return self.stop is not None

    @property
    def predicted_full_energy_j(self) -> float | None:
        """The full planned run's predicted energy, in J (None: nothing was predicted)."""
        return self.prediction.total_j if self.prediction else None

    @property
    def predicted_full_energy_sigma_j(self) -> float | None:
        """Its one-sigma uncertainty, in J."""
        return self.prediction.sigma_j if self.prediction else None

    @property
    def predicted_full_energy_source(self) -> str | None:
        """What the prediction was made from, one line."""
        return self.prediction.describe() if self.prediction else None

    @property
    def energy_saved_source(self) -> str:
        """What ``energy_saved_j`` is based on."""
        if self.prediction is None:
            return "none: the run was not stopped early"
        return (
            f"prediction: the full run predicted from {self.prediction.source} epochs, minus "
            "the measured total"
        )

    @property
    def stop_reason(self) -> str:
        """Why the run ended, one line."""
        if self.stop is not None:
            return self.stop.reason
        return f"completed: all {self.planned_epochs} planned epochs ran"

    @property
    def final_val_accuracy(self) -> float | None:
        """Validation accuracy after the last epoch."""
        return self.epochs[-1].val_accuracy if self.epochs else None

    @property
    def final_val_loss(self) -> float | None:
        """Validation loss after the last epoch."""
        return self.epochs[-1].val_loss if self.epochs else None

    @property
    def best_val_accuracy(self) -> float | None:
        """Best validation accuracy of any epoch."""
        return max(e.val_accuracy for e in self.epochs) if self.epochs else None

    def energy_to_accuracy_j(self, target: float) -> float | None:
        """Energy of the epochs up to the first reaching ``target`` accuracy, in J (None:
        never reached). Overhead between epochs is not included."""
        spent = 0.0
        for e in self.epochs:
            spent += e.energy_j
            if e.val_accuracy >= target:
                return spent
        return None


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`wattwise.train.fit` on Ctrl-C, after the run was stored as
    interrupted; a KeyboardInterrupt, so code that does not know it stops as before.

    Attributes:
        result: what was done: the completed epochs and the energy measured until then.
    """

    def __init__(self, result: FitResult) -> None:
        super().__init__(result.stop_reason)
        self.result = result
