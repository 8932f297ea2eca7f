"""The objective: train a workload with a trial's parameters and measure what it cost.

Each trial is one tracked run. The run is started before the model is built, linked to the
wattwise study at once (so a worker killed mid-trial leaves a run that says where it
belonged), and stopped after the last epoch; its energy is then written twice: as Optuna
user attributes of the trial (``energy_j``, ``study_energy_j``, ``energy_source``...) and in
the wattwise store, as the run itself and the attributes of its link to the study.

Validation accuracy is reported to Optuna after every epoch, so a pruner can stop a trial;
the stop goes through the training loop's own stop request, so the tracker always closes
cleanly and the pruned trial's energy is recorded like any other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wattwise._records import Provenance, RunResult, RunStatus, Scope
from wattwise.protocol import LeverContext, StudySession
from wattwise.search._records import (
    ATTR_ACCURACY,
    ATTR_ENERGY,
    ATTR_EPOCHS,
    ATTR_HOST,
    ATTR_PID,
    ATTR_RUN,
    ATTR_SOURCE,
    ATTR_STUDY_ENERGY,
    Workload,
)
from wattwise.search._space import Choice, SearchSpace

if TYPE_CHECKING:
    import optuna

    from wattwise.train import EpochRecord, TrainState
    from wattwise.workloads import DataSplit

__all__ = ["EnergyObjective", "Workload"]

#: Training settings a space may leave out, and their values then.
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 1e-3
DEFAULT_OPTIMIZER = "adam"


class EnergyObjective:
    """An Optuna objective that trains the workload and measures each trial.

    Returns the validation accuracy after the last epoch (and the trial's energy in J too
    when the study has two directions). The constructor only stores its arguments; the
    dataset is loaded on the first trial (unless given) and kept.

    Args:
        workload: what to train.
        space: the parameters to ask the trial for, and the epochs of a full trial.
        context: meters, scope and store of the trials' runs (None: detected meters,
            ``process`` scope, which keeps other programs' load out, and no store).
        session: the wattwise study each trial's run is linked to; its context (its
            store) is used instead of ``context``.
        label: prefix of each link's label (``tpe r0 ``), before ``trial N``.
        attributes: extra attributes of every link (strategy, repeat...).
        data: the dataset, when the caller loaded it already (None: loaded on first use).
    """

    def __init__(
        self,
        workload: Workload,
        space: SearchSpace,
        *,
        context: LeverContext | None = None,
        session: StudySession | None = None,
        label: str = "",
        attributes: Mapping[str, Any] | None = None,
        data: DataSplit | None = None,
    ) -> None:
        self.workload = workload
        self.space = space
        self.session = session
        self.context = (
            session.context
            if session is not None
            else context or LeverContext(store=False, scope=Scope.PROCESS)
        )
        self.label = label
        self.attributes = dict(attributes or {})
        self._data = data
        self.trials_run = 0
        self.energy_j = 0.0

    def data(self) -> DataSplit:
        """The dataset, loaded once."""
        if self._data is None:
            from wattwise.workloads import load_dataset

            self._data = load_dataset(self.workload.dataset, classes=self.workload.classes)
        return self._data

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        import optuna

        from wattwise.train import fit
        from wattwise.workloads import build_model

        data = self.data()
        params = self.space.suggest(trial)
        multi = len(trial.study.directions) > 1
        tracker = self.context.tracker(f"{trial.study.study_name} trial {trial.number}")
        tracker.start()
        trial.set_user_attr(ATTR_RUN, tracker.run_id)
        trial.set_user_attr(ATTR_HOST, socket.gethostname())
        trial.set_user_attr(ATTR_PID, os.getpid())
        reporter = _make_reporter(trial, prune=not multi)
        try:
            self._link(trial, tracker.run_id, params, {"state": "running"})
            model = build_model(
                self.workload.model_spec(params),
                input_shape=data.input_shape,
                num_classes=data.num_classes,
            )
            fit(
                model,
                data,
                epochs=self.space.epochs,
                batch_size=int(params.get("batch_size", DEFAULT_BATCH_SIZE)),
                lr=float(params.get("lr", DEFAULT_LR)),
                optimizer=str(params.get("optimizer", DEFAULT_OPTIMIZER)),
                callbacks=[reporter],
                device=self.workload.device,
                seed=self.workload.seed,
                tracker=tracker,
                name="train",
            )
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            run = tracker.stop(status=RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED)
            self._record(trial, run, params, reporter, state="fail", note=_one_line(exc))
            raise
        run = tracker.stop()
        pruned = reporter.pruned_at is not None
        self._record(trial, run, params, reporter, state="pruned" if pruned else "complete")
        accuracy = reporter.accuracy if reporter.accuracy is not None else 0.0
        if pruned:
            raise optuna.TrialPruned(
                f"pruned after epoch {reporter.pruned_at} at accuracy {accuracy:.4f}"
            )
        return (accuracy, run.energy_j) if multi else accuracy

    def _record(
        self,
        trial: optuna.Trial,
        run: RunResult,
        params: Mapping[str, Choice],
        reporter: Any,
        *,
        state: str,
        note: str | None = None,
    ) -> None:
        energy = run.energy_j
        source = str(Provenance.from_components(run.components))
        others = sum(
            float(t.user_attrs.get(ATTR_ENERGY, 0.0))
            for t in trial.study.get_trials(deepcopy=False)
            if t.number != trial.number
        )
        figures: dict[str, Any] = {
            ATTR_ENERGY: energy,
            ATTR_STUDY_ENERGY: others + energy,
            ATTR_SOURCE: source,
            ATTR_ACCURACY: reporter.accuracy,
            ATTR_EPOCHS: reporter.epochs,
        }
        for key, value in figures.items():
            trial.set_user_attr(key, value)
        self.trials_run += 1
        self.energy_j += energy
        extra = {"state": state, **figures}
        if reporter.pruned_at is not None:
            extra["pruned_at_epoch"] = reporter.pruned_at
        if note:
            extra["error"] = note
        self._link(trial, run.run_id, params, extra)

    def _link(
        self,
        trial: optuna.Trial,
        run_id: str,
        params: Mapping[str, Choice],
        extra: Mapping[str, Any],
    ) -> None:
        if self.session is None:
            return
        attributes = {
            "trial": trial.number,
            "params": dict(params),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "optuna_study": trial.study.study_name,
            **self.attributes,
            **extra,
        }
        self.session.link(run_id, f"{self.label}trial {trial.number}", attributes)


def _make_reporter(trial: optuna.Trial, *, prune: bool) -> Any:
    """A training callback reporting each epoch's validation accuracy to the trial."""
    from wattwise.train import Callback

    class _Reporter(Callback):
        def __init__(self) -> None:
            self.accuracy: float | None = None
            self.epochs = 0
            self.pruned_at: int | None = None

        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            self.accuracy = record.val_accuracy
            self.epochs = record.epoch
            if not prune:
                return
            trial.report(record.val_accuracy, record.epoch)
            if record.epoch < state.planned_epochs and trial.should_prune():
                self.pruned_at = record.epoch
                state.request_stop(
                    f"pruned by Optuna after epoch {record.epoch} "
                    f"(validation accuracy {record.val_accuracy:.4f})",
                    rule="pruner",
                )

    return _Reporter()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
