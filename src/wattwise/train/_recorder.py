"""Per-epoch energy for training loops that are not wattwise's (Lightning, Keras, HF).

The framework callbacks are thin: each maps its framework's hooks onto this recorder,
which runs a tracker (or uses a running one: the rule of :func:`wattwise.protocol.tracking`,
spread over the framework's begin and end hooks) and opens the window ``epoch-N`` around
each epoch, so the epochs land in the store like those of :func:`wattwise.train.fit`.

With stopping rules, :meth:`EpochEnergyRecorder.check_stop` turns each measured epoch and
the framework's validation metrics into an :class:`EpochRecord` and asks the rules, as
:func:`wattwise.train.fit` does; the callback then tells its framework to stop. The epochs
and why the run stopped are stored as the run's training history (see
``wattwise.train._history``), so ``wattwise report RUN_ID`` shows them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from wattwise._errors import ConfigError, WattwiseError
from wattwise._records import Provenance, RunResult, RunStatus, WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker, Window
from wattwise.train._history import TrainingHistory
from wattwise.train._mlflow import MlflowLogger, RunTotals, mlflow_logger
from wattwise.train._predict import predict_total
from wattwise.train._records import EpochRecord, StopDecision
from wattwise.train._stopping import EnergyBudget, StopContext, StopRule

__all__ = ["EpochEnergyRecorder"]


class EpochEnergyRecorder:
    """Measures each epoch of a foreign training loop as a tracker window.

    Args:
        name: the run's name (or the tracker's, when it is given).
        tracker: a tracker to use; started (and stopped) here unless it is running.
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        stop: stopping rules asked by :meth:`check_stop` after each epoch.
        mlflow: log each epoch's energy and the totals to MLflow (``True``, or an
            :class:`~wattwise.train.MlflowLogger`); None: as ``WATTWISE_MLFLOW`` says.
            Checked here, so a missing MLflow is said before training starts.
    """

    def __init__(
        self,
        name: str = "train",
        *,
        tracker: Tracker | None = None,
        context: LeverContext | None = None,
        stop: Sequence[StopRule] = (),
        mlflow: bool | MlflowLogger | None = None,
    ) -> None:
        self.name = name
        self.mlflow = mlflow_logger(mlflow)
        self.tracker = tracker
        self.context = context or LeverContext()
        self.stop = tuple(stop)
        self.epochs: list[WindowResult] = []
        #: The epochs the rules saw (with their validation metrics).
        self.history: list[EpochRecord] = []
        #: Why the rules stopped the run (None: they did not).
        self.stop_decision: StopDecision | None = None
        self._own = False
        self._window: Window | None = None
        self._history: TrainingHistory | None = None
        self._epoch = 0

    def begin(self, planned_epochs: int | None = None) -> None:
        """Start measuring (at the start of training); ``planned_epochs`` for the rules."""
        if self.tracker is None:
            self.tracker = self.context.tracker(self.name)
        if self.mlflow is not None:  # before the tracker: a missing MLflow run said at once
            self.mlflow.attach(self.name)
        if not self.tracker.running:
            self._own = True
            self.tracker.start()
        if self.mlflow is not None:
            self.mlflow.start(self.tracker)
        self.epochs = []
        self.history = []
        self.stop_decision = None
        if self.stop:
            self._history = TrainingHistory(
                self.tracker,
                name=self.name,
                params={},
                planned_epochs=planned_epochs or 0,
                stop=self.stop,
            )

    def check_stop(
        self,
        result: WindowResult,
        *,
        planned_epochs: int,
        val_accuracy: float | None,
        val_loss: float | None = None,
    ) -> StopDecision | None:
        """Record the measured epoch ``result`` with its validation metrics; ask the rules.

        Returns (and keeps in :attr:`stop_decision`) why to stop after this epoch, or None.
        The last planned epoch is recorded but not asked about (the run ends anyway).

        Raises:
            ConfigError: a rule needs the validation accuracy and the framework gave none.
        """
        if val_accuracy is None and any(not isinstance(r, EnergyBudget) for r in self.stop):
            raise ConfigError(
                "the stopping rules need the validation accuracy after each epoch: log it "
                "under the callback's monitor name (default val_accuracy), or pass monitor="
            )
        source = str(Provenance.from_components(result.components))
        n = len(self.history) + 1
        energies = [e.energy_j for e in self.history] + [result.energy_j]
        planned = max(planned_epochs, n)
        prediction = predict_total(energies, planned, source=source)
        self.history.append(
            EpochRecord(
                epoch=n,
                energy_j=result.energy_j,
                uncertainty_j=result.uncertainty_j,
                duration_s=result.duration_s,
                train_energy_j=result.energy_j,
                eval_energy_j=0.0,
                train_loss=math.nan,
                val_loss=math.nan if val_loss is None else float(val_loss),
                val_accuracy=math.nan if val_accuracy is None else float(val_accuracy),
                source=source,
                components=result.components,
                prediction=prediction,
            )
        )
        if self._history is not None:
            self._history.epoch(self.history)
        if n >= planned:
            return None
        context = StopContext(self.history, planned, sum(energies), prediction)
        for rule in self.stop:
            reason = rule.check(context)
            if reason is not None:
                self.stop_decision = StopDecision(rule.name, reason, n)
                return self.stop_decision
        return None

    def epoch_begin(self, epoch: int) -> None:
        """Open the window of ``epoch`` (1-based); an epoch still open is closed first."""
        if self.tracker is None or not self.tracker.running:
            raise WattwiseError("EpochEnergyRecorder.begin() was not called")
        if self._window is not None:
            self.epoch_end()
        self._epoch = epoch
        self._window = self.tracker.window(f"epoch-{epoch}").__enter__()

    def epoch_end(self) -> WindowResult | None:
        """Close the current epoch's window and return its energy (None: none was open)."""
        if self._window is None:
            return None
        window, self._window = self._window, None
        window.__exit__(None, None, None)
        assert window.result is not None
        self.epochs.append(window.result)
        if self.mlflow is not None:
            self.mlflow.log_window(self._epoch, window.result)
        return window.result

    @property
    def energy_j(self) -> float:
        """Energy of the closed epochs, in J."""
        return sum(e.energy_j for e in self.epochs)

    def end(self, *, failed: bool = False) -> RunResult | None:
        """Stop measuring; returns the run when the recorder started the tracker."""
        self.epoch_end()
        if self._history is not None:
            self._history.end(self.history, self.stop_decision, failed=failed)
            self._history = None
        run: RunResult | None = None
        if self.tracker is not None and self._own:
            self._own = False
            run = self.tracker.stop(status=RunStatus.FAILED if failed else RunStatus.COMPLETED)
        if self.mlflow is not None and self.mlflow.logging:
            self.mlflow.finish(self._totals(run, failed))
        return run

    def _totals(self, run: RunResult | None, failed: bool) -> RunTotals:
        """What MLflow gets at the end: the run's totals when it was ours, else the epochs'."""
        if run is not None:
            totals = RunTotals.of_run(run, failed=failed)
        else:
            totals = RunTotals.of_windows(self.epochs, failed=failed)
        d = self.stop_decision
        if d is not None and not failed:
            totals = dataclasses.replace(totals, status="stopped early", stop_reason=d.reason)
        return totals
