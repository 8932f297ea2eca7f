"""Frozen records of a search: trials, a search's result, a shared study's status, and the
strategies' comparison (its workload, anytime curves, repeats).

Energies are in J and carry their provenance (``energy_source``: measured by which sensor,
or estimated by which model), as the tracker reported it for each trial. Their JSON comes
from :class:`~wattwise._records.Record`: field names are the keys.

Over 500 lines on purpose: a search's and a comparison's records share their trial rows and
are read together as one schema (docs/search.md); the comparison's charts (its anytime
curves) are drawn from those same rows.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from wattwise._records.base import Record
from wattwise._records.charts import ChartData, CurveData
from wattwise.search._space import TRAINING_PARAMS, Choice, SearchSpace
from wattwise.workloads._spec import split_spec

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Comparison",
    "CurvePoint",
    "HostEnergy",
    "RepeatResult",
    "SearchResult",
    "StrategyResult",
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
class TrialRecord(Record):
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


class _TrialCounts:
    """Counts of a record's trials by state (written to its JSON as derived figures)."""

    trials: tuple[TrialRecord, ...]

    def count(self, state: str) -> int:
        """Trials in a state (``complete``, ``pruned``, ``fail``...)."""
        return sum(1 for t in self.trials if t.state == state)

    @property
    def trial_count(self) -> int:
        """Trials of the search (of a shared study: every worker's)."""
        return len(self.trials)

    @property
    def complete(self) -> int:
        """Complete trials."""
        return self.count("complete")

    @property
    def pruned(self) -> int:
        """Pruned trials."""
        return self.count("pruned")

    @property
    def failed(self) -> int:
        """Failed trials."""
        return self.count("fail")


@dataclass(frozen=True)
class SearchResult(_TrialCounts, Record):
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

    kind: ClassVar[str] = "sweep"
    derived: ClassVar[tuple[str, ...]] = ("trial_count", "complete", "pruned", "failed")


@dataclass(frozen=True)
class HostEnergy(Record):
    """The trials one machine ran in a shared study and their energy.

    Attributes:
        host: the machine's name.
        trials: trials it ran (any state).
        energy_j: their energy, in J (a killed trial's up to its last stored sample).
    """

    host: str
    trials: int
    energy_j: float


@dataclass(frozen=True)
class WorkerEnergy(Record):
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


@dataclass(frozen=True)
class StudyStatus(Record):
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

    kind: ClassVar[str] = "sweep-status"


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Workload(Record):
    """What every trial trains: a dataset and a model family.

    Attributes:
        dataset: a dataset spec (``digits``, ``synthetic:samples=500``...).
        model: a model spec (``cnn``, ``mlp:depth=1``); the space's model parameters are
            added to its options.
        classes: keep these classes only (None: all).
        device: ``cpu``, ``cuda``, ``auto``...
        seed: the training seed, the same for every trial, so that two trials with the same
            parameters train the same way and differ only by what the search chose.
    """

    dataset: str = "digits"
    model: str = "cnn"
    classes: tuple[int, ...] | None = None
    device: str = "cpu"
    seed: int = 0

    def model_spec(self, params: Mapping[str, Choice]) -> str:
        """The model spec for a trial: the workload's, with the trial's model options."""
        name, options = split_spec(self.model)
        parts = [options] if options else []
        parts += [f"{k}={v}" for k, v in params.items() if k not in TRAINING_PARAMS]
        return name + (":" + ",".join(parts) if parts else "")


@dataclass(frozen=True)
class CurvePoint(Record):
    """One point of an anytime curve, read as a trial finished.

    Attributes:
        trial: the trial that just finished.
        energy_j: the search's energy so far, in J.
        best_accuracy: best accuracy of a complete trial so far (None: none yet).
    """

    trial: int
    energy_j: float
    best_accuracy: float | None

    compact: ClassVar[tuple[str, ...]] = ("energy_j", "best_accuracy", "trial")


@dataclass(frozen=True)
class RepeatResult(_TrialCounts, Record):
    """One strategy's search in one repeat.

    Attributes:
        repeat: 0-based repeat.
        seed: the sampler's seed.
        trials: its trials, in the order they finished.
        curve: its anytime curve.
        total_energy_j: energy of the whole search (trials and the work between them), J.
        trials_energy_j: energy of the trials alone, in J.
        best_accuracy: best accuracy of a complete trial (None: none completed).
        energy_to_target_j: energy when the target was first reached, J (None: never).
        run_id: the search's tracked run.
        energy_source: provenance of its energy.
    """

    repeat: int
    seed: int
    trials: tuple[TrialRecord, ...]
    curve: tuple[CurvePoint, ...]
    total_energy_j: float
    trials_energy_j: float
    best_accuracy: float | None
    energy_to_target_j: float | None
    run_id: str
    energy_source: str

    derived: ClassVar[tuple[str, ...]] = (
        "search_overhead_j",
        "trial_count",
        "complete",
        "pruned",
        "failed",
        "epochs",
    )

    @property
    def search_overhead_j(self) -> float:
        """Energy of the work between the trials (sampler, pruner), in J."""
        return self.total_energy_j - self.trials_energy_j

    @property
    def epochs(self) -> int:
        """Epochs trained over all trials."""
        return sum(t.epochs or 0 for t in self.trials)


def _median_or_none(values: Sequence[float | None]) -> float | None:
    """Median with None as +inf; None when the median is infinite."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


@dataclass(frozen=True)
class StrategyResult(Record):
    """One strategy over every repeat.

    Attributes:
        strategy: its name.
        description: what ran, with its settings.
        repeats: each repeat's search.
        energy_to_target_vs_grid_total: ``energy_to_target_j`` over grid search's
            ``total_energy_j`` (None: no grid, or the target was not reached).
    """

    strategy: str
    description: str
    repeats: tuple[RepeatResult, ...]
    energy_to_target_vs_grid_total: float | None = None

    derived: ClassVar[tuple[str, ...]] = (
        "best_accuracy",
        "best_accuracy_min",
        "best_accuracy_max",
        "total_energy_j",
        "trials_energy_j",
        "search_overhead_j",
        "energy_to_target_j",
        "target_reached_repeats",
    )

    @property
    def best_accuracy_min(self) -> float | None:
        """Lowest best accuracy of a repeat (None: no complete trial)."""
        found = [r.best_accuracy for r in self.repeats if r.best_accuracy is not None]
        return min(found) if found else None

    @property
    def best_accuracy_max(self) -> float | None:
        """Highest best accuracy of a repeat (None: no complete trial)."""
        found = [r.best_accuracy for r in self.repeats if r.best_accuracy is not None]
        return max(found) if found else None

    @property
    def search_overhead_j(self) -> float:
        """Mean over repeats of the energy between trials, in J."""
        return self.total_energy_j - self.trials_energy_j

    @property
    def best_accuracy(self) -> float | None:
        """Mean over repeats of the best accuracy found (None: no complete trial)."""
        found = [r.best_accuracy for r in self.repeats if r.best_accuracy is not None]
        return statistics.fmean(found) if found else None

    @property
    def total_energy_j(self) -> float:
        """Mean over repeats of the whole search's energy, in J."""
        return statistics.fmean(r.total_energy_j for r in self.repeats)

    @property
    def trials_energy_j(self) -> float:
        """Mean over repeats of the trials' energy, in J."""
        return statistics.fmean(r.trials_energy_j for r in self.repeats)

    @property
    def energy_to_target_j(self) -> float | None:
        """Median over repeats of the energy to target, in J; None when more than half of
        the repeats never reached it."""
        return _median_or_none([r.energy_to_target_j for r in self.repeats])

    @property
    def target_reached_repeats(self) -> int:
        """Repeats that reached the target."""
        return sum(1 for r in self.repeats if r.energy_to_target_j is not None)


@dataclass(frozen=True)
class Comparison(Record):
    """Strategies compared on the same workload, space and trial budget.

    Attributes:
        workload: what every trial trained.
        space: the search space.
        trials: the trial budget of each strategy's search.
        repeats: searches per strategy.
        target_accuracy: the accuracy to reach (None: no complete grid trial to set it).
        target_source: where the target came from.
        strategies: each strategy's results, in the order asked.
        energy_source: provenance of every energy figure.
        scope: the trackers' scope.
        study_id: the stored ``sweep-compare`` study, or None.
        notes: caveats worth reading with the figures.
    """

    workload: Workload
    space: SearchSpace
    trials: int
    repeats: int
    target_accuracy: float | None
    target_source: str
    strategies: tuple[StrategyResult, ...]
    energy_source: str
    scope: str
    study_id: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    kind: ClassVar[str] = "sweep-compare"
    derived: ClassVar[tuple[str, ...]] = ("space_source", "curve_columns")

    @property
    def space_source(self) -> str:
        """Where the search space came from (a file, or ``built-in space for cnn``)."""
        return self.space.source

    @property
    def curve_columns(self) -> list[str]:
        """What each anytime curve's points hold, in order."""
        return list(CurvePoint.compact)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The comparison, with its space's source (written beside the space)."""
        record = super().from_dict(data)
        space = dataclasses.replace(record.space, source=str(data.get("space_source", "")))
        return dataclasses.replace(record, space=space)

    def charts(self) -> tuple[ChartData, ...]:
        """The anytime curves, one chart per repeat: each strategy's best accuracy so far
        against the search's energy so far, with the target (a point per finished trial
        that has a complete trial behind it)."""
        out: list[ChartData] = []
        for repeat in range(self.repeats):
            labels: list[str] = []
            xs: list[tuple[float, ...]] = []
            ys: list[tuple[float, ...]] = []
            for s in self.strategies:
                run = next((r for r in s.repeats if r.repeat == repeat), None)
                points = [p for p in run.curve if p.best_accuracy is not None] if run else []
                if points:
                    labels.append(s.strategy)
                    xs.append(tuple(p.energy_j for p in points))
                    ys.append(tuple(float(p.best_accuracy or 0.0) for p in points))
            target = (
                f"; target {self.target_accuracy:.4f} ({self.target_source})"
                if self.target_accuracy is not None
                else ""
            )
            out.append(
                CurveData(
                    labels=tuple(labels),
                    xs=tuple(xs),
                    ys=tuple(ys),
                    xlabel="search energy so far (J)",
                    ylabel="best validation accuracy so far",
                    caption=f"Anytime curves, repeat {repeat + 1} of {self.repeats}: best "
                    f"accuracy of a complete trial against the search's energy "
                    f"({self.energy_source}){target}.",
                    target=self.target_accuracy,
                )
            )
        return tuple(out)

    def strategy(self, name: str) -> StrategyResult:
        """One strategy's results by name.

        Raises:
            KeyError: no such strategy in the comparison.
        """
        for s in self.strategies:
            if s.strategy == name:
                return s
        raise KeyError(name)
