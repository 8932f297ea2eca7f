"""Strategies compared on the same work: best accuracy, energy, and energy to a target.

Every strategy gets the same workload, space, trial budget and training seed, in the same
run of the program on the same machine; repeats interleave the strategies (grid, random,
tpe, grid, random, tpe...) so that a drift in the machine's load spreads over all of them.
Before the first search, one untracked epoch warms PyTorch up, so that the first strategy
does not pay its one-time start-up.

Each strategy's search is one tracked run, with a window per trial: its energy counts the
trials *and* what happens between them (the sampler choosing, the pruner deciding), so a
strategy that thinks hard pays for it. The anytime curve is read at the end of every trial:
the search's energy so far against the best accuracy of a complete trial so far. A pruned
trial never counts as found: its energy does.

The target accuracy is grid search's best accuracy minus 0.5 percentage points (its mean
over the repeats), unless one is given. A strategy's energy to target is the energy its
search had spent when its best accuracy first reached the target; over repeats, the median,
with a repeat that never reached it counting as infinite (so it is None when more than half
never did: never a mean over the lucky repeats only).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from wattwise._errors import ConfigError
from wattwise._records import Provenance, Scope
from wattwise.protocol import (
    LeverContext,
    Protocol,
    StudySession,
    schedule,
    study_session,
    warm_up,
)
from wattwise.search._objective import EnergyObjective
from wattwise.search._records import (
    Comparison,
    CurvePoint,
    RepeatResult,
    StrategyResult,
    TrialRecord,
    Workload,
)
from wattwise.search._space import SearchSpace, builtin_space
from wattwise.search._strategies import Strategy, parse_strategies

if TYPE_CHECKING:
    import optuna

__all__ = [
    "COMPARE_PROTOCOL",
    "TARGET_MARGIN",
    "anytime_curve",
    "compare_strategies",
    "energy_to_target_j",
]

#: The default target is grid search's best accuracy minus this (0.5 percentage points).
TARGET_MARGIN: Final = 0.005

ProgressHook = Callable[[str, int, TrialRecord], None]


def anytime_curve(
    trials: Sequence[TrialRecord], energies_j: Sequence[float]
) -> tuple[CurvePoint, ...]:
    """Best accuracy so far against energy so far.

    Args:
        trials: trials in the order they finished.
        energies_j: the search's energy when each finished, in J (non-decreasing).

    Raises:
        ValueError: the sequences differ in length.
    """
    if len(trials) != len(energies_j):
        raise ValueError("one energy per trial is needed")
    best: float | None = None
    out = []
    for t, e in zip(trials, energies_j, strict=True):
        if t.state == "complete" and t.accuracy is not None:
            best = t.accuracy if best is None else max(best, t.accuracy)
        out.append(CurvePoint(t.number, e, best))
    return tuple(out)


def energy_to_target_j(curve: Sequence[CurvePoint], target: float) -> float | None:
    """The energy spent when the best accuracy first reached ``target``, in J (None: never)."""
    for p in curve:
        if p.best_accuracy is not None and p.best_accuracy >= target:
            return p.energy_j
    return None


@dataclass
class _Raw:
    """One search as it ran, before the target is known."""

    repeat: int
    seed: int
    trials: list[TrialRecord]
    energies: list[float]
    total_j: float
    run_id: str
    source: str


#: The default protocol of :func:`compare_strategies`: one untracked training epoch before
#: the first search (so no strategy pays PyTorch's first-use start-up), one search per
#: strategy, repeats interleaved, the first repeat's sampler seed 0.
COMPARE_PROTOCOL = Protocol(repeats=1, warmup=1, seed=0)


def compare_strategies(
    workload: Workload,
    space: SearchSpace | None = None,
    *,
    strategies: Sequence[Strategy | str] | str = ("grid", "random", "tpe", "hyperband"),
    trials: int = 16,
    protocol: Protocol = COMPARE_PROTOCOL,
    target_accuracy: float | None = None,
    name: str | None = None,
    on_trial: ProgressHook | None = None,
    context: LeverContext | None = None,
) -> Comparison:
    """Run every strategy on the same work and compare them.

    Args:
        workload: what each trial trains.
        space: the search space (default: the model's built-in space).
        strategies: strategies or their names, or a comma-separated string.
        trials: trials per search (grid search stops early when its grid is smaller).
        protocol: searches per strategy (``repeats``), in its order (``round-robin``
            interleaves the strategies), with its cool-down between searches; ``warmup``
            untracked training epochs before the first; repeat ``r`` seeds the samplers
            with ``protocol.seed_of(r)`` (default: :data:`COMPARE_PROTOCOL`).
        target_accuracy: the accuracy to reach (0..1); default: grid's best minus 0.5 pp.
        name: the stored study's name.
        on_trial: called after each trial with the strategy, the repeat and the trial.
        context: the trackers' meters, scope and store (None: detected meters,
            ``process`` scope, the default store).

    Raises:
        ConfigError: bad settings; no target and no grid search to set one.
    """
    strats = (
        parse_strategies(strategies)
        if isinstance(strategies, str)
        else tuple(parse_strategies(s)[0] if isinstance(s, str) else s for s in strategies)
    )
    names = [s.name for s in strats]
    if len(set(names)) != len(names):
        raise ConfigError(f"a strategy is listed twice: {', '.join(names)}")
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ConfigError(f"the target accuracy is in (0, 1], got {target_accuracy}")
    if target_accuracy is None and "grid" not in names:
        raise ConfigError(
            "give a target accuracy, or include grid to set it (grid's best - 0.5 pp)"
        )
    space = space if space is not None else builtin_space(workload.model)
    space.check_model(workload.model)
    context = context or LeverContext(scope=Scope.PROCESS)
    data = EnergyObjective(workload, space).data()
    params = {
        "workload": workload.to_dict(),
        "space": space.to_dict(),
        "strategies": names,
        "trials": trials,
        "repeats": protocol.repeats,
        "seed": protocol.seed,
        "target_accuracy": target_accuracy,
        "scope": str(context.scope),
    }
    study_name = name or f"{workload.dataset} {workload.model}: {', '.join(names)}"
    with study_session(context, kind="sweep-compare", name=study_name, params=params) as s:
        warm_up(partial(_warm_up_epoch, workload, space, data, context), protocol)
        by_name = {strat.name: strat for strat in strats}
        raw: dict[str, list[_Raw]] = {n: [] for n in names}
        for repeat, label in schedule(names, protocol):
            raw[label].append(
                _one_search(
                    by_name[label],
                    workload,
                    space,
                    data,
                    repeat=repeat - 1,
                    seed=protocol.seed_of(repeat),
                    trials=trials,
                    session=s,
                    on_trial=on_trial,
                )
            )
        comparison = _comparison(
            workload,
            space,
            strats,
            raw,
            trials=trials,
            repeats=protocol.repeats,
            target_accuracy=target_accuracy,
            scope=str(context.scope),
            study_id=s.study_id if s.stored else None,
        )
        s.finish(comparison.to_dict())
    return comparison


def _comparison(
    workload: Workload,
    space: SearchSpace,
    strats: tuple[Strategy, ...],
    raw: dict[str, list[_Raw]],
    *,
    trials: int,
    repeats: int,
    target_accuracy: float | None,
    scope: str,
    study_id: str | None,
) -> Comparison:
    """The comparison of the searches as they ran: the target, each strategy's figures."""
    target, target_source = _target(raw, target_accuracy)
    results: list[StrategyResult] = []
    for strat in strats:
        reps = tuple(_finish(x, target) for x in raw[strat.name])
        results.append(StrategyResult(strat.name, strat.describe(space), reps))
    if "grid" in raw:
        grid_total = next(s for s in results if s.strategy == "grid").total_energy_j
        results = [
            StrategyResult(
                s.strategy,
                s.description,
                s.repeats,
                s.energy_to_target_j / grid_total
                if s.energy_to_target_j is not None and grid_total > 0
                else None,
            )
            for s in results
        ]
    return Comparison(
        workload=workload,
        space=space,
        trials=trials,
        repeats=repeats,
        target_accuracy=target,
        target_source=target_source,
        strategies=tuple(results),
        energy_source=str(Provenance.combine(x.source for xs in raw.values() for x in xs)),
        scope=scope,
        study_id=study_id,
        notes=_notes(space, trials, strats, raw),
    )


def _warm_up_epoch(
    workload: Workload, space: SearchSpace, data: Any, context: LeverContext
) -> None:
    """One untracked epoch of the space's first grid point (a warm-up call)."""
    from wattwise.train import fit
    from wattwise.workloads import build_model

    first = {k: v[0] for k, v in space.grid().items()}
    model = build_model(
        workload.model_spec(first), input_shape=data.input_shape, num_classes=data.num_classes
    )
    fit(
        model,
        data,
        epochs=1,
        device=workload.device,
        seed=workload.seed,
        context=context.with_(store=False),
        name="sweep-compare warm-up",
    )


def _one_search(
    strat: Strategy,
    workload: Workload,
    space: SearchSpace,
    data: Any,
    *,
    repeat: int,
    seed: int,
    trials: int,
    session: StudySession,
    on_trial: ProgressHook | None,
) -> _Raw:
    import optuna

    label = f"{strat.name} r{repeat} "
    objective = EnergyObjective(
        workload,
        space,
        session=session,
        label=label,
        attributes={"role": "trial", "strategy": strat.name, "repeat": repeat},
        data=data,
    )
    study = optuna.create_study(
        study_name=f"compare {strat.name} r{repeat}",
        sampler=strat.make_sampler(space, seed=seed, trials=trials),
        pruner=strat.make_pruner(space),
        directions=strat.directions,
    )
    search = session.tracker(f"sweep-compare {strat.name} r{repeat}")
    finished: list[TrialRecord] = []
    energies: list[float] = []

    def timed(trial: optuna.Trial) -> float | tuple[float, float]:
        # A window per trial: its edges force a reading, so the search's energy read
        # after the trial is exact, not up to a sampling interval old.
        with search.window(f"trial-{trial.number}"):
            return objective(trial)

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        record = TrialRecord.from_frozen(frozen)
        finished.append(record)
        energies.append(search.energy_j)
        if on_trial is not None:
            on_trial(strat.name, repeat, record)

    with search:
        study.optimize(timed, n_trials=trials, callbacks=[after], catch=())
    run = search.result
    assert run is not None
    source = str(Provenance.from_components(run.components))
    session.link(
        run.run_id,
        f"{label}search",
        {
            "role": "search",
            "strategy": strat.name,
            "repeat": repeat,
            "seed": seed,
            "energy_j": run.energy_j,
            "trials_energy_j": sum(t.energy_j or 0.0 for t in finished),
            "energy_source": source,
        },
    )
    return _Raw(repeat, seed, finished, energies, run.energy_j, run.run_id, source)


def _target(raw: dict[str, list[_Raw]], given: float | None) -> tuple[float | None, str]:
    if given is not None:
        return given, "given"
    bests = []
    for x in raw["grid"]:
        accs = [t.accuracy for t in x.trials if t.state == "complete" and t.accuracy is not None]
        if accs:
            bests.append(max(accs))
    if not bests:
        return None, "none: grid search completed no trial"
    grid_best = statistics.fmean(bests)
    over = f"mean over {len(bests)} repeats of " if len(bests) > 1 else ""
    return (
        grid_best - TARGET_MARGIN,
        f"{over}grid's best accuracy {grid_best:.4f} minus {TARGET_MARGIN * 100:g} pp",
    )


def _finish(x: _Raw, target: float | None) -> RepeatResult:
    curve = anytime_curve(x.trials, x.energies)
    best = curve[-1].best_accuracy if curve else None
    return RepeatResult(
        repeat=x.repeat,
        seed=x.seed,
        trials=tuple(x.trials),
        curve=curve,
        total_energy_j=x.total_j,
        trials_energy_j=sum(t.energy_j or 0.0 for t in x.trials),
        best_accuracy=best,
        energy_to_target_j=energy_to_target_j(curve, target) if target is not None else None,
        run_id=x.run_id,
        energy_source=x.source,
    )


def _notes(
    space: SearchSpace, trials: int, strats: Sequence[Strategy], raw: dict[str, list[_Raw]]
) -> tuple[str, ...]:
    notes = [
        "accuracy is validation accuracy, the same split the search selects on: "
        "an optimistic estimate of accuracy on new data",
        "a pruned trial's energy counts; its accuracy never counts as found",
    ]
    if any(s.sampler == "grid" for s in strats):
        size = space.grid_size
        if size > trials:
            notes.append(
                f"grid search tried {trials} of its {size} grid points, in a seeded shuffled order"
            )
        elif size < trials:
            ran = max(len(x.trials) for x in raw.get("grid", [])) if raw.get("grid") else size
            notes.append(f"grid search stopped after its {size} grid points ({ran} trials)")
    return tuple(notes)
