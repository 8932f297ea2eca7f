"""Frozen records of a search: trials, a search's result, a shared study's status.

Energies are in J and carry their provenance (``energy_source``: measured by which sensor,
or estimated by which model), as the tracker reported it for each trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = [
    "HostEnergy",
    "SearchResult",
    "StudyStatus",
    "TrialRecord",
    "WorkerEnergy",
]

#: Optuna user attributes the objective writes on every trial.
ATTR_ENERGY = "energy_j"
ATTR_STUDY_ENERGY = "study_energy_j"
ATTR_SOURCE = "energy_source"
ATTR_ACCURACY = "accuracy"
ATTR_EPOCHS = "epochs"
ATTR_HOST = "host"
ATTR_PID = "pid"
ATTR_RUN = "run_id"


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a search, with what it cost.

    Attributes:
        number: Optuna's trial number in its study.
        state: ``complete``, ``pruned``, ``fail``, ``running`` or ``waiting``.
        params: the hyperparameters it trained with.
        accuracy: validation accuracy (0..1) after its last epoch (for a pruned trial: the
            epoch it was stopped at); None when no epoch finished.
        energy_j: energy of the trial's tracked run, in J; None when it was never
            recorded (its worker died: see the run store for what was measured).
        study_energy_j: the study's energy once this trial finished (the sum of the
            recorded energy of its trials so far, every worker's), in J.
        epochs: epochs it trained.
        host: the machine that ran it.
        pid: the worker process that ran it.
        run_id: its tracked run in the wattwise store.
        energy_source: provenance of ``energy_j``.
        duration_s: wall-clock length, in s (None while running).
    """

    number: int
    state: str
    params: dict[str, Any] = field(default_factory=dict)
    accuracy: float | None = None
    energy_j: float | None = None
    study_energy_j: float | None = None
    epochs: int | None = None
    host: str | None = None
    pid: int | None = None
    run_id: str | None = None
    energy_source: str | None = None
    duration_s: float | None = None

    @classmethod
    def from_frozen(cls, trial: optuna.trial.FrozenTrial) -> TrialRecord:
        """Read a trial and the user attributes the objective wrote on it."""
        attrs: Mapping[str, Any] = trial.user_attrs
        return cls(
            number=trial.number,
            state=trial.state.name.lower(),
            params=dict(trial.params),
            accuracy=_opt_float(attrs.get(ATTR_ACCURACY)),
            energy_j=_opt_float(attrs.get(ATTR_ENERGY)),
            study_energy_j=_opt_float(attrs.get(ATTR_STUDY_ENERGY)),
            epochs=_opt_int(attrs.get(ATTR_EPOCHS)),
            host=attrs.get(ATTR_HOST),
            pid=_opt_int(attrs.get(ATTR_PID)),
            run_id=attrs.get(ATTR_RUN),
            energy_source=attrs.get(ATTR_SOURCE),
            duration_s=trial.duration.total_seconds() if trial.duration is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "number": self.number,
            "state": self.state,
            "params": self.params,
            "accuracy": self.accuracy,
            "energy_j": self.energy_j,
            "study_energy_j": self.study_energy_j,
            "energy_source": self.energy_source,
            "epochs": self.epochs,
            "host": self.host,
            "pid": self.pid,
            "run_id": self.run_id,
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class SearchResult:
    """What a search (or one worker's part of a shared search) found and cost.

    Attributes:
        study_name: the Optuna study.
        strategy: the strategy's name (``tpe``, ``hyperband``...).
        storage: where the Optuna study lives (password masked), or ``in-memory``.
        trials: every trial of the study, every worker's, by number.
        best: the complete trial with the best accuracy (single objective), or None.
        pareto: the Pareto set of accuracy (up) and energy (down), for ``nsga2``.
        total_energy_j: the recorded energy of all the study's trials, in J.
        worker_trials: trials this process ran.
        worker_energy_j: energy of the trials this process ran, in J.
        energy_source: provenance of the totals.
        stop_reason: why this process stopped asking for trials.
        energy_budget_j: the study's energy budget in J, or None.
        study_id: the wattwise study the trials are linked to, or None when not stored.
    """

    study_name: str
    strategy: str
    storage: str
    trials: tuple[TrialRecord, ...]
    best: TrialRecord | None
    pareto: tuple[TrialRecord, ...]
    total_energy_j: float
    worker_trials: int
    worker_energy_j: float
    energy_source: str
    stop_reason: str
    energy_budget_j: float | None = None
    study_id: str | None = None

    def count(self, state: str) -> int:
        """Trials in a state (``complete``, ``pruned``, ``fail``...)."""
        return sum(1 for t in self.trials if t.state == state)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the schema of ``wattwise sweep run --json``)."""
        return {
            "study": self.study_name,
            "strategy": self.strategy,
            "storage": self.storage,
            "wattwise_study_id": self.study_id,
            "trials": len(self.trials),
            "complete": self.count("complete"),
            "pruned": self.count("pruned"),
            "failed": self.count("fail"),
            "total_energy_j": self.total_energy_j,
            "energy_source": self.energy_source,
            "energy_budget_j": self.energy_budget_j,
            "worker_trials": self.worker_trials,
            "worker_energy_j": self.worker_energy_j,
            "stop_reason": self.stop_reason,
            "best": self.best.to_dict() if self.best is not None else None,
            "pareto": [t.to_dict() for t in self.pareto],
            "trial_list": [t.to_dict() for t in self.trials],
        }


@dataclass(frozen=True)
class HostEnergy:
    """The trials one machine ran in a shared study and their energy.

    Attributes:
        host: the machine's name.
        trials: trials it ran (any state).
        energy_j: their energy, in J (a killed trial's up to its last stored sample).
    """

    host: str
    trials: int
    energy_j: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"host": self.host, "trials": self.trials, "energy_j": self.energy_j}


@dataclass(frozen=True)
class WorkerEnergy:
    """The trials one worker process ran in a shared study and their energy.

    Attributes:
        host: its machine.
        pid: its process id.
        trials: trials it ran.
        energy_j: their energy, in J.
    """

    host: str
    pid: int | None
    trials: int
    energy_j: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "host": self.host,
            "pid": self.pid,
            "trials": self.trials,
            "energy_j": self.energy_j,
        }


@dataclass(frozen=True)
class StudyStatus:
    """Where a shared study stands.

    Attributes:
        study_name: the Optuna study.
        storage: its storage (password masked).
        strategy: the strategy its workers run, if recorded.
        trials: trials in any state.
        complete: complete trials.
        pruned: pruned trials.
        failed: failed trials (a killed worker's trial fails once its heartbeat is stale).
        running: running trials.
        total_energy_j: energy of every trial, in J.
        interrupted_energy_j: the part of ``total_energy_j`` measured for trials whose
            worker died, up to its last stored sample, in J.
        unmeasured_trials: trials with no energy at all (died before their run was stored).
        hosts: energy per machine.
        workers: energy per worker process.
        best_accuracy: best accuracy of a complete trial, or None.
        best_trial: its number, or None.
        energy_source: provenance of the totals.
    """

    study_name: str
    storage: str
    strategy: str | None
    trials: int
    complete: int
    pruned: int
    failed: int
    running: int
    total_energy_j: float
    interrupted_energy_j: float
    unmeasured_trials: int
    hosts: tuple[HostEnergy, ...]
    workers: tuple[WorkerEnergy, ...]
    best_accuracy: float | None
    best_trial: int | None
    energy_source: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the schema of ``wattwise sweep status --json``)."""
        return {
            "study": self.study_name,
            "storage": self.storage,
            "strategy": self.strategy,
            "trials": self.trials,
            "complete": self.complete,
            "pruned": self.pruned,
            "failed": self.failed,
            "running": self.running,
            "total_energy_j": self.total_energy_j,
            "interrupted_energy_j": self.interrupted_energy_j,
            "unmeasured_trials": self.unmeasured_trials,
            "energy_source": self.energy_source,
            "best_accuracy": self.best_accuracy,
            "best_trial": self.best_trial,
            "hosts": [h.to_dict() for h in self.hosts],
            "workers": [w.to_dict() for w in self.workers],
        }


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
