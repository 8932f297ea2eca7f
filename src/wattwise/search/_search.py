"""One search, alone or as one worker of a study shared through a database.

Optuna runs the search; this module adds what it does not know: each trial's energy, the
study's energy budget, the trial target shared by all workers, the wattwise study the trials'
runs are linked to, and the status of a shared study with energy per machine.

Why ~540 lines: one search and one worker of a shared study are the same code path (the
stop rules, stale trials and the study's creation race are what a worker adds); splitting
them would split the order in which a worker joins, searches and reports.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Final

from wattwise._errors import ConfigError, StoreError, StoreNotFound, WattwiseError
from wattwise._records import Provenance, Scope
from wattwise._units import format_energy
from wattwise.protocol import LeverContext, StudySession, study_session
from wattwise.search._objective import EnergyObjective, Workload
from wattwise.search._records import (
    ATTR_ENERGY,
    ATTR_HOST,
    ATTR_PID,
    ATTR_RUN,
    HostEnergy,
    SearchResult,
    StudyStatus,
    TrialRecord,
    WorkerEnergy,
)
from wattwise.search._space import SearchSpace, builtin_space
from wattwise.search._storage import (
    DEFAULT_HEARTBEAT_S,
    close_storage,
    open_storage,
    require_existing_storage,
    store_url_for,
)
from wattwise.search._strategies import Strategy, parse_strategy
from wattwise.store import RunStore
from wattwise.store._backend import mask_url

if TYPE_CHECKING:
    import optuna

__all__ = ["STUDY_ATTR", "search", "study_status", "sweep_study_id"]

log = logging.getLogger("wattwise")

#: The Optuna study user attribute holding what the study searches (workers must agree).
STUDY_ATTR: Final = "wattwise"
# Workers racing to create the wattwise study: one insert wins, the others retry and find it.
_CREATE_TRIES: Final = 3

TrialHook = Callable[[TrialRecord], None]


def sweep_study_id(study_name: str) -> str:
    """The wattwise study id of the Optuna study ``study_name`` (kind ``sweep``)."""
    return f"sweep:{study_name}"


def _open_read_only(store: RunStore | str | None, stack: ExitStack) -> RunStore:
    """A store to read: ``store`` itself, or one opened read-only here, closed with ``stack``."""
    if isinstance(store, RunStore):
        return store
    opened = RunStore.open(store, read_only=True)
    stack.callback(opened.close)
    return opened


def _settings(workload: Workload, space: SearchSpace, strategy: Strategy) -> dict[str, Any]:
    return {
        "dataset": workload.dataset,
        "model": workload.model,
        "classes": list(workload.classes) if workload.classes is not None else None,
        "space": space.to_dict(),
        "strategy": strategy.name,
    }


def _check_settings(study: optuna.Study, wanted: dict[str, Any]) -> None:
    """A worker joins a study only to search what it searches."""
    have = study.user_attrs.get(STUDY_ATTR)
    if have is None:
        study.set_user_attr(STUDY_ATTR, wanted)
        return
    for key in ("dataset", "model", "classes", "strategy", "space"):
        if have.get(key) != wanted.get(key):
            shown = have.get(key) if key != "space" else "another space"
            flag = {"classes": "--classes", "space": "--space"}.get(key, f"--{key}")
            raise ConfigError(
                f"study {study.study_name!r} searches with {key} {shown!r}; this worker has "
                f"{wanted.get(key)!r} (give the same {flag} as the study's first worker)"
                if key != "space"
                else f"study {study.study_name!r} was started with another search space; "
                "give every worker the same --space file"
            )


def _open_session(
    stack: ExitStack, context: LeverContext, name: str, params: dict[str, Any]
) -> StudySession:
    """Create or join the wattwise study of the Optuna study ``name`` (kind ``sweep``).

    Workers racing to create it: one insert wins, the others retry and find it.
    """
    for attempt in range(_CREATE_TRIES):
        try:
            return stack.enter_context(
                study_session(
                    context,
                    kind="sweep",
                    name=name,
                    params=params,
                    study_id=sweep_study_id(name),
                    exist_ok=True,
                )
            )
        except StoreError:
            if attempt + 1 == _CREATE_TRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


class _StopRules:
    """After each trial (and before the first): stop once the study has its trials or has
    spent its energy budget. Shared by every worker, since it reads the shared study."""

    def __init__(self, trials: int, budget_j: float | None) -> None:
        self.trials = trials
        self.budget_j = budget_j
        self.reason = ""

    def check(self, study: optuna.Study) -> str | None:
        from optuna.trial import TrialState

        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if len(finished) >= self.trials:
            return f"the study has {len(finished)} finished trials (target {self.trials})"
        if self.budget_j is not None:
            spent = sum(
                float(t.user_attrs.get(ATTR_ENERGY, 0.0)) for t in study.get_trials(deepcopy=False)
            )
            if spent >= self.budget_j:
                return (
                    f"the study's energy budget is spent: {format_energy(spent)} of "
                    f"{format_energy(self.budget_j)} "
                    "(no new trial once it is)"
                )
        return None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        reason = self.check(study)
        if reason is not None:
            self.reason = reason
            study.stop()


class _StaleTrials:
    """Marks a trial failed by the heartbeat as failed in the wattwise study too (once the
    study's session is open: Optuna calls this only while trials are asked for)."""

    def __init__(self) -> None:
        self.session: StudySession | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get(ATTR_RUN)
        log.warning(
            "trial %s of %s was failed: its worker (%s, pid %s) stopped beating its heartbeat",
            trial.number,
            study.study_name,
            trial.user_attrs.get(ATTR_HOST),
            trial.user_attrs.get(ATTR_PID),
        )
        session = self.session
        if session is None or session.store is None or not isinstance(run_id, str):
            return
        try:
            run = session.store.get_run(run_id)
            session.link(
                run_id,
                f"trial {trial.number}",
                {
                    "trial": trial.number,
                    "state": "fail",
                    "params": dict(trial.params),
                    "host": trial.user_attrs.get(ATTR_HOST),
                    "pid": trial.user_attrs.get(ATTR_PID),
                    "optuna_study": study.study_name,
                    "energy_j": run.energy_j,
                    "energy_measured_until_worker_died": True,
                    "error": "the worker stopped beating its heartbeat (killed?)",
                },
            )
        except WattwiseError as exc:
            log.warning("could not mark trial %s failed in the store: %s", trial.number, exc)


def search(
    workload: Workload,
    space: SearchSpace | None = None,
    *,
    strategy: Strategy | str = "tpe",
    trials: int = 16,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    energy_budget_j: float | None = None,
    seed: int | None = None,
    heartbeat_interval_s: int | None = DEFAULT_HEARTBEAT_S,
    grace_period_s: int | None = None,
    on_trial: TrialHook | None = None,
    context: LeverContext | None = None,
) -> SearchResult:
    """Search hyperparameters with Optuna, measuring every trial's energy.

    With a ``storage``, this process is one worker of a shared study: it creates the study
    or joins it, asks for trials until the *study* has ``trials`` finished (complete or
    pruned) trials, every worker's counted, and records its trials' energy, with its host
    name, in the wattwise store. Workers already in a trial when the target is reached
    finish it, so a study may end with a few more trials than the target.

    Args:
        workload: what each trial trains.
        space: the search space (default: the model's built-in space).
        strategy: a :class:`Strategy` or its name (``tpe``, ``grid``, ``hyperband``...).
        trials: finished trials the study should have.
        storage: an Optuna storage URL (``postgresql://...``) or object; None: in memory.
        study_name: the Optuna study (default: a new name).
        energy_budget_j: the study's energy budget in J: no new trial once the recorded
            energy of its trials reaches it.
        seed: the sampler's seed (None: random; give workers of one study different seeds).
        heartbeat_interval_s: heartbeat of running trials in a storage given as a URL, in s.
        grace_period_s: a trial whose heartbeat is older fails, in s (default: 3 beats).
        on_trial: called after each trial this process ran, with its record.
        context: the trials' meters (a factory of fresh ones for each trial) and scope, and
            the wattwise store for their runs: a store, a URL, False for none, or None: the
            storage's own database when it is a PostgreSQL URL (wattwise's tables are
            prefixed ``wattwise_``), else the default store. None: detected meters,
            ``process`` scope, that store.

    Raises:
        ConfigError: bad settings, or a study that searches something else.
        StoreError: the wattwise store failed.
        StoreUnreachable: the storage cannot be reached.
    """
    if trials < 1:
        raise ConfigError(f"the trial target must be >= 1, got {trials}")
    if energy_budget_j is not None and not energy_budget_j > 0:
        raise ConfigError(f"the energy budget must be > 0 J, got {energy_budget_j}")
    strat = parse_strategy(strategy) if isinstance(strategy, str) else strategy
    space = space if space is not None else builtin_space(workload.model)
    space.check_model(workload.model)
    name = study_name or f"{strat.name}-{uuid.uuid4().hex[:8]}"
    context = context or LeverContext(scope=Scope.PROCESS)
    if context.store is None and isinstance(storage, str):
        context = context.with_(store=store_url_for(storage))  # PostgreSQL: its own database
    with ExitStack() as stack:
        return _search(
            stack,
            workload,
            space,
            strat,
            trials=trials,
            storage=storage,
            name=name,
            energy_budget_j=energy_budget_j,
            seed=seed,
            heartbeat_interval_s=heartbeat_interval_s,
            grace_period_s=grace_period_s,
            on_trial=on_trial,
            context=context,
        )


def _search(
    stack: ExitStack,
    workload: Workload,
    space: SearchSpace,
    strat: Strategy,
    *,
    trials: int,
    storage: str | optuna.storages.BaseStorage | None,
    name: str,
    energy_budget_j: float | None,
    seed: int | None,
    heartbeat_interval_s: int | None,
    grace_period_s: int | None,
    on_trial: TrialHook | None,
    context: LeverContext,
) -> SearchResult:
    stale = _StaleTrials()
    if isinstance(storage, str):
        shown = mask_url(storage)
        rdb = open_storage(
            storage,
            heartbeat_interval_s=heartbeat_interval_s,
            grace_period_s=grace_period_s,
            on_stale_trial=stale,
        )
        stack.callback(close_storage, rdb)
        storage_obj: optuna.storages.BaseStorage | None = rdb
    else:
        shown = "in-memory" if storage is None else type(storage).__name__
        storage_obj = storage

    study = _open_study(storage_obj, name, strat, space, seed=seed, trials=trials, shown=shown)
    settings = _settings(workload, space, strat)
    _check_settings(study, settings)
    session = _open_session(
        stack,
        context,
        name,
        {
            **settings,
            "optuna_study": name,
            "storage": shown,
            "trials": trials,
            "energy_budget_j": energy_budget_j,
        },
    )
    stale.session = session
    study_id = session.study_id if session.stored else None

    objective = EnergyObjective(
        workload,
        space,
        session=session,
        attributes={"strategy": strat.name},
    )
    rules = _StopRules(trials, energy_budget_j)
    mine: list[int] = []

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        mine.append(frozen.number)
        if on_trial is not None:
            on_trial(TrialRecord.from_frozen(frozen))

    _fail_stale(study)
    reason = rules.check(study)
    if reason is None:
        study.optimize(objective, callbacks=[after, rules], catch=())
        reason = rules.reason or "the sampler has no more points to try (grid exhausted)"
    result = _result(study, strat, shown, mine, reason, energy_budget_j, study_id)
    session.finish(result.to_dict())
    return result


def _open_study(
    storage: optuna.storages.BaseStorage | None,
    name: str,
    strat: Strategy,
    space: SearchSpace,
    *,
    seed: int | None,
    trials: int,
    shown: str,
) -> optuna.Study:
    import optuna

    sampler = strat.make_sampler(space, seed=seed, trials=trials)
    pruner = strat.make_pruner(space)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=sampler,
            pruner=pruner,
            directions=strat.directions,
            load_if_exists=True,
        )
    except ValueError as exc:  # Optuna: directions differ from the stored study's
        raise ConfigError(f"study {name!r} in {shown}: {exc}") from None
    if [d.name.lower() for d in study.directions] != strat.directions:
        raise ConfigError(
            f"study {name!r} in {shown} optimises {[d.name.lower() for d in study.directions]}, "
            f"strategy {strat.name} needs {strat.directions}"
        )
    return study


def _fail_stale(study: optuna.Study) -> None:
    """Fail trials of dead workers now, so the checks below do not count them as running."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _result(
    study: optuna.Study,
    strat: Strategy,
    shown: str,
    mine: list[int],
    reason: str,
    budget_j: float | None,
    study_id: str | None,
) -> SearchResult:
    records = tuple(
        TrialRecord.from_frozen(t) for t in sorted(study.get_trials(), key=lambda t: t.number)
    )
    complete = [t for t in records if t.state == "complete" and t.accuracy is not None]
    best = None
    pareto: tuple[TrialRecord, ...] = ()
    if strat.multi_objective:
        front = {t.number for t in study.best_trials}
        pareto = tuple(t for t in records if t.number in front)
    elif complete:
        best = max(complete, key=lambda t: (t.accuracy or 0.0, -(t.energy_j or 0.0)))
    own = [t for t in records if t.number in set(mine)]
    return SearchResult(
        study_name=study.study_name,
        strategy=strat.name,
        storage=shown,
        trials=records,
        best=best,
        pareto=pareto,
        total_energy_j=sum(t.energy_j or 0.0 for t in records),
        worker_trials=len(own),
        worker_energy_j=sum(t.energy_j or 0.0 for t in own),
        energy_source=str(Provenance.combine(t.energy_source for t in records)),
        stop_reason=reason,
        energy_budget_j=budget_j,
        study_id=study_id,
    )


def study_status(
    storage: str,
    study_name: str,
    *,
    store: RunStore | str | None = None,
) -> StudyStatus:
    """Where a shared study stands: trials by state, energy per machine and worker.

    Energy comes from the trials' records; a trial whose worker died before recording it
    is looked up in the wattwise store, which holds what was measured until the worker's
    last flush (the store is opened only then).

    Args:
        storage: the Optuna storage URL.
        study_name: the study.
        store: the wattwise store for killed trials (None: the storage's own database
            when PostgreSQL, else the default store).

    Raises:
        ConfigError: a bad URL, or no such study (the message lists the studies there).
        StoreUnreachable: the storage cannot be reached.
    """
    require_existing_storage(storage)  # looking must not create a storage
    with ExitStack() as stack:
        storage_obj = open_storage(storage, heartbeat_interval_s=None)
        stack.callback(close_storage, storage_obj)
        return _status(stack, storage, storage_obj, study_name, store)


def _status(
    stack: ExitStack,
    storage: str,
    storage_obj: optuna.storages.RDBStorage,
    study_name: str,
    store: RunStore | str | None,
) -> StudyStatus:
    import optuna

    shown = mask_url(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_obj)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage_obj)]
        listed = ", ".join(names[:10]) if names else "none"
        raise ConfigError(f"no study {study_name!r} in {shown} (studies there: {listed})") from None
    records = [TrialRecord.from_frozen(t) for t in study.get_trials()]
    run_store: RunStore | None = None
    energies: dict[int, float] = {}
    interrupted = 0.0
    unmeasured = 0
    for t in records:
        if t.energy_j is not None:
            energies[t.number] = t.energy_j
            continue
        if t.state == "running" or t.run_id is None:
            if t.state != "running":
                unmeasured += 1
            continue
        if run_store is None:  # only read: never create the wattwise store here
            try:
                run_store = _open_read_only(
                    store if store is not None else store_url_for(storage), stack
                )
            except StoreNotFound:
                unmeasured += 1
                continue
        assert run_store is not None
        try:
            partial = run_store.get_run(t.run_id).energy_j
        except WattwiseError:
            unmeasured += 1
            continue
        energies[t.number] = partial
        interrupted += partial
    hosts: dict[str, list[float]] = {}
    workers: dict[tuple[str, int | None], list[float]] = {}
    for t in records:
        host = t.host or "unknown"
        e = energies.get(t.number, 0.0)
        hosts.setdefault(host, []).append(e)
        workers.setdefault((host, t.pid), []).append(e)
    complete = [t for t in records if t.state == "complete" and t.accuracy is not None]
    best = max(complete, key=lambda t: t.accuracy or 0.0) if complete else None
    settings = study.user_attrs.get(STUDY_ATTR) or {}
    return StudyStatus(
        study_name=study_name,
        storage=shown,
        strategy=settings.get("strategy"),
        trials=len(records),
        complete=sum(t.state == "complete" for t in records),
        pruned=sum(t.state == "pruned" for t in records),
        failed=sum(t.state == "fail" for t in records),
        running=sum(t.state == "running" for t in records),
        total_energy_j=sum(energies.values()),
        interrupted_energy_j=interrupted,
        unmeasured_trials=unmeasured,
        hosts=tuple(HostEnergy(h, len(es), sum(es)) for h, es in sorted(hosts.items())),
        workers=tuple(
            WorkerEnergy(h, pid, len(es), sum(es))
            for (h, pid), es in sorted(workers.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
        ),
        best_accuracy=best.accuracy if best is not None else None,
        best_trial=best.number if best is not None else None,
        energy_source=str(Provenance.combine(t.energy_source for t in records)),
    )
