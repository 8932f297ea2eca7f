"""The search library: strategies, the measuring objective, pruning, the energy budget,
the Pareto set, the comparison's arithmetic, and what lands in the store.

Real training on digits with tiny models. Energy comes from a replayed constant-power trace
at machine scope, so it is time x power and does not depend on other programs' load.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("yaml")

# Tiny models gain nothing from intra-op threads; on a busy 2-core machine they only wait.
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.search import (  # noqa: E402
    COMPARE_PROTOCOL,
    CurvePoint,
    SearchSpace,
    Strategy,
    TrialRecord,
    Workload,
    anytime_curve,
    compare_strategies,
    energy_to_target_j,
    parse_strategies,
    parse_strategy,
    search,
    sweep_study_id,
)
from wattwise.search._records import _median_or_none  # noqa: E402
from wattwise.store import RunStore  # noqa: E402

POWER_W = 20.0
CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)
SOURCE = "estimated (test-model)"
WORKLOAD = Workload(dataset="digits", model="mlp")
SPACE = SearchSpace.from_dict(
    {
        "epochs": 3,
        "params": {
            "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
            "width": {"type": "int", "low": 4, "high": 32, "log": True},
            "depth": [1],
        },
    },
    source="test space",
)


def meters() -> list[Meter]:
    return [ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])]


def context(store: object = False) -> LeverContext:
    """Replayed meters at machine scope, runs to ``store``."""
    return LeverContext.of(meters=meters, store=store, scope="machine")  # type: ignore[arg-type]


def run_search(store: object = False, **kwargs: object) -> object:
    args: dict[str, object] = {"trials": 4, "seed": 0, "context": context(store)}
    args.update(kwargs)
    return search(WORKLOAD, SPACE, **args)  # type: ignore[arg-type]


# -- strategies -------------------------------------------------------------------------------


def test_strategy_names_parse_to_samplers_and_pruners() -> None:
    assert parse_strategy("tpe") == Strategy("tpe")
    assert parse_strategy("hyperband") == Strategy("random", "hyperband")
    assert parse_strategy("ASHA").name == "asha"
    assert parse_strategy("tpe+hyperband") == Strategy("tpe", "hyperband")
    assert parse_strategy("nsga2").directions == ["maximize", "minimize"]
    assert [s.name for s in parse_strategies("grid, random,tpe,hyperband")] == [
        "grid",
        "random",
        "tpe",
        "hyperband",
    ]
    with pytest.raises(ConfigError, match="unknown strategy 'bohb'"):
        parse_strategy("bohb")
    with pytest.raises(ConfigError, match="unknown pruner 'median'"):
        parse_strategy("tpe+median")
    with pytest.raises(ConfigError, match="cannot prune multi-objective"):
        parse_strategy("nsga2+asha")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_strategies("tpe,random+hyperband,hyperband")


def test_samplers_and_pruners_are_optunas_with_the_space_resource() -> None:
    hb = parse_strategy("hyperband")
    assert isinstance(hb.make_sampler(SPACE, seed=1, trials=16), optuna.samplers.RandomSampler)
    pruner = hb.make_pruner(SPACE)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._max_resource == SPACE.epochs  # the resource is epochs, from the space
    asha = parse_strategy("asha").make_pruner(SPACE)
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(
        parse_strategy("gp").make_sampler(SPACE, seed=1, trials=4), optuna.samplers.GPSampler
    )
    nsga = parse_strategy("nsga2").make_sampler(SPACE, seed=1, trials=16)
    assert isinstance(nsga, optuna.samplers.NSGAIISampler)
    grid = parse_strategy("grid").make_sampler(SPACE, seed=1, trials=16)
    assert isinstance(grid, optuna.samplers.GridSampler)


# -- the comparison's arithmetic ----------------------------------------------------------------


def rec(number: int, state: str, accuracy: float | None) -> TrialRecord:
    return TrialRecord(number=number, state=state, accuracy=accuracy, energy_j=1.0)


def test_anytime_curve_counts_only_complete_trials_as_found() -> None:
    trials = [rec(0, "complete", 0.5), rec(1, "pruned", 0.9), rec(2, "fail", None)]
    trials += [rec(3, "complete", 0.8), rec(4, "complete", 0.7)]
    curve = anytime_curve(trials, [1.0, 1.5, 2.0, 4.0, 5.0])
    assert curve == (
        CurvePoint(0, 1.0, 0.5),
        CurvePoint(1, 1.5, 0.5),  # a pruned trial's accuracy is not a found model
        CurvePoint(2, 2.0, 0.5),
        CurvePoint(3, 4.0, 0.8),
        CurvePoint(4, 5.0, 0.8),
    )
    assert energy_to_target_j(curve, 0.8) == 4.0
    assert energy_to_target_j(curve, 0.5) == 1.0
    assert energy_to_target_j(curve, 0.81) is None  # never reached: None, not the total
    assert energy_to_target_j((), 0.1) is None
    with pytest.raises(ValueError, match="one energy per trial"):
        anytime_curve(trials, [1.0])


def test_median_energy_to_target_counts_never_as_infinite() -> None:
    assert _median_or_none([3.0, None, 1.0]) == 3.0
    assert _median_or_none([1.0, None]) is None  # half never reached: no finite median
    assert _median_or_none([None]) is None
    assert _median_or_none([2.0, 4.0]) == 3.0


# -- one search -----------------------------------------------------------------------------------


def test_each_trial_records_its_energy_in_optuna_and_the_store(tmp_path: Path) -> None:
    store = RunStore.open(str(tmp_path / "runs.sqlite"))
    result = run_search(strategy="random", trials=3, store=store, study_name="s1")
    assert result.count("complete") == 3 and result.stop_reason.startswith("the study has 3")
    assert result.energy_source == SOURCE
    running = 0.0
    study = store.get_study(sweep_study_id("s1"))
    assert study.kind == "sweep" and study.params["strategy"] == "random"
    links = {link.attributes["trial"]: link for link in study.runs}
    for t in result.trials:
        assert t.epochs == 3 and t.accuracy is not None and 0 < t.accuracy <= 1
        assert t.energy_j is not None and t.energy_j > 0
        running += t.energy_j
        # The study's cumulative energy after each trial (one worker: trials in order).
        assert t.study_energy_j == pytest.approx(running)
        run = store.get_run(t.run_id or "")
        assert run.energy_j == pytest.approx(t.energy_j)
        # A constant 20 W replay: energy is power x the run's duration.
        assert run.energy_j == pytest.approx(POWER_W * run.duration_s, rel=1e-6)
        attrs = links[t.number].attributes
        assert attrs["state"] == "complete" and attrs["params"] == t.params
        assert attrs["accuracy"] == t.accuracy and attrs["host"] == t.host
        assert attrs["energy_j"] == pytest.approx(t.energy_j)
    assert result.total_energy_j == pytest.approx(running)
    assert result.best is not None
    assert result.best.accuracy == max(t.accuracy or 0 for t in result.trials)
    assert study.results is not None and study.results["complete"] == 3
    store.close()


@pytest.mark.parametrize("strategy", ["grid", "random", "tpe", "gp", "tpe+asha"])
def test_every_sampler_runs_the_trial_budget(strategy: str) -> None:
    result = run_search(strategy=strategy, trials=3)
    finished = result.count("complete") + result.count("pruned")
    assert finished == 3 and len(result.trials) == 3


def test_pruners_stop_trials_early_and_their_energy_still_counts(tmp_path: Path) -> None:
    store = RunStore.open(str(tmp_path / "runs.sqlite"))
    result = run_search(strategy="asha", trials=8, store=store, study_name="pruned")
    pruned = [t for t in result.trials if t.state == "pruned"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert pruned and complete
    for t in pruned:
        assert t.epochs is not None and t.epochs < SPACE.epochs
        assert t.energy_j is not None and t.energy_j > 0 and t.accuracy is not None
    for t in complete:
        assert t.epochs == SPACE.epochs
    assert result.total_energy_j == pytest.approx(sum(t.energy_j or 0 for t in result.trials))
    links = store.get_study(sweep_study_id("pruned")).runs
    states = sorted(link.attributes["state"] for link in links)
    assert states.count("pruned") == len(pruned)
    assert all(
        "pruned_at_epoch" in link.attributes
        for link in links
        if link.attributes["state"] == "pruned"
    )
    store.close()


def test_no_new_trial_once_the_energy_budget_is_spent() -> None:
    storage = optuna.storages.InMemoryStorage()
    # Any trial spends more than 1 mJ: the budget is spent by the first one.
    first = run_search(
        strategy="random", trials=10, storage=storage, study_name="b", energy_budget_j=1e-3
    )
    assert len(first.trials) == 1 and first.worker_trials == 1
    assert "energy budget is spent" in first.stop_reason
    again = run_search(
        strategy="random", trials=10, storage=storage, study_name="b", energy_budget_j=1e-3
    )
    assert len(again.trials) == 1 and again.worker_trials == 0  # nothing new was started
    # A larger budget on the same study lets the search go on.
    budget = (first.trials[0].energy_j or 0.0) * 2.5
    more = run_search(
        strategy="random", trials=10, storage=storage, study_name="b", energy_budget_j=budget
    )
    assert 2 <= len(more.trials) <= 4 and "budget is spent" in more.stop_reason
    spent_before_last = sum(t.energy_j or 0 for t in more.trials[:-1])
    assert spent_before_last < budget <= more.total_energy_j


def test_a_refused_worker_writes_nothing_to_the_store(tmp_path: Path) -> None:
    storage = optuna.storages.InMemoryStorage()
    run_search(strategy="random", trials=1, storage=storage, study_name="y")  # no store
    url = str(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError, match="searches with strategy 'random'"):
        run_search(url, strategy="tpe", trials=2, storage=storage, study_name="y")
    assert not Path(url).exists()  # checked before the wattwise store was opened


def test_a_worker_must_search_what_the_study_searches() -> None:
    storage = optuna.storages.InMemoryStorage()
    run_search(strategy="random", trials=1, storage=storage, study_name="x")
    with pytest.raises(ConfigError, match="searches with strategy 'random'"):
        run_search(strategy="tpe", trials=2, storage=storage, study_name="x")
    other = SearchSpace.from_dict({"epochs": 2, "params": {"depth": [1]}})
    with pytest.raises(ConfigError, match="another search space"):
        search(
            WORKLOAD, other, strategy="random", storage=storage, study_name="x",
            context=LeverContext(store=False),
        )  # fmt: skip


def test_nsga2_returns_the_pareto_set_of_accuracy_and_energy() -> None:
    result = run_search(strategy="nsga2", trials=6)
    assert result.best is None and result.pareto
    done = [t for t in result.trials if t.state == "complete"]

    def dominates(a: TrialRecord, b: TrialRecord) -> bool:
        acc_a, acc_b = a.accuracy or 0.0, b.accuracy or 0.0
        e_a, e_b = a.energy_j or math.inf, b.energy_j or math.inf
        return acc_a >= acc_b and e_a <= e_b and (acc_a > acc_b or e_a < e_b)

    front = {t.number for t in result.pareto}
    for t in done:
        dominated = any(dominates(o, t) for o in done)
        assert (t.number in front) == (not dominated), t


# -- comparison -------------------------------------------------------------------------------


def test_compare_runs_every_strategy_on_the_same_budget_and_stores_it(tmp_path: Path) -> None:
    store = RunStore.open(str(tmp_path / "runs.sqlite"))
    seen: list[tuple[str, int]] = []
    c = compare_strategies(
        WORKLOAD,
        SPACE,
        strategies="grid,random,asha",
        trials=3,
        protocol=replace(COMPARE_PROTOCOL, repeats=2, seed=5),
        context=context(store),
        on_trial=lambda s, r, t: seen.append((s, r)),
    )
    assert [s.strategy for s in c.strategies] == ["grid", "random", "asha"]
    assert len(seen) == 3 * 3 * 2
    # Repeats interleave strategies: every strategy's first repeat before any second one.
    assert [r for _, r in seen[:9]] == [0] * 9
    grid = c.strategy("grid")
    assert [r.seed for r in grid.repeats] == [5, 6]  # the protocol's seed_of each repeat
    bests = [r.best_accuracy for r in grid.repeats]
    assert c.target_accuracy == pytest.approx(sum(bests) / 2 - 0.005)  # type: ignore[operator]
    assert "grid's best accuracy" in c.target_source and "minus 0.5 pp" in c.target_source
    for s in c.strategies:
        for r in s.repeats:
            assert len(r.trials) == 3 and len(r.curve) == 3
            energies = [p.energy_j for p in r.curve]
            assert energies == sorted(energies) and energies[-1] <= r.total_energy_j
            # The search's energy covers its trials and the work between them.
            assert r.trials_energy_j < r.total_energy_j
            assert r.energy_source == SOURCE
            if r.energy_to_target_j is not None:
                assert r.energy_to_target_j in energies
    # The target is the mean of grid's repeats: its best repeat reaches it, maybe not all.
    assert grid.target_reached_repeats >= 1
    for s in c.strategies:
        ratio = s.energy_to_target_vs_grid_total
        if s.energy_to_target_j is None:
            assert ratio is None
        else:
            assert ratio == pytest.approx(s.energy_to_target_j / grid.total_energy_j)
    d = c.to_dict()
    assert d["target_accuracy"] == c.target_accuracy
    for s in d["strategies"]:
        assert {"strategy", "best_accuracy", "total_energy_j", "energy_to_target_j"} <= set(s)
    stored = store.get_study(c.study_id or "")
    assert stored.kind == "sweep-compare" and stored.results is not None
    assert stored.results["strategies"][0]["repeats"][0]["curve"]
    roles = [link.attributes["role"] for link in stored.runs]
    assert roles.count("search") == 3 * 2 and roles.count("trial") == 3 * 3 * 2
    store.close()


def test_compare_needs_a_target_or_grid() -> None:
    with pytest.raises(ConfigError, match="give a target accuracy, or include grid"):
        compare_strategies(
            WORKLOAD, SPACE, strategies="random", trials=1, context=LeverContext(store=False)
        )


def test_compare_with_an_unreachable_target_says_never(tmp_path: Path) -> None:
    c = compare_strategies(
        WORKLOAD,
        SPACE,
        strategies="random",
        trials=2,
        target_accuracy=1.0,
        context=context(),
    )
    s = c.strategy("random")
    # Three epochs of a tiny MLP do not classify every validation digit.
    assert s.energy_to_target_j is None and s.target_reached_repeats == 0
    assert c.to_dict()["strategies"][0]["energy_to_target_j"] is None
    assert c.target_source == "given"


@pytest.mark.slow
def test_report_of_a_compare_study_draws_the_anytime_curves(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    """End to end: ``wattwise report --study`` on a stored sweep-compare study draws one
    chart of anytime curves (best accuracy against the search's energy) per repeat, each
    strategy a line, with the target."""
    path = tmp_path / "runs.sqlite"
    store = RunStore.open(str(path))
    c = compare_strategies(
        WORKLOAD,
        SPACE,
        strategies="grid,random",
        trials=2,
        protocol=replace(COMPARE_PROTOCOL, repeats=2),
        context=context(store),
    )
    store.close()
    charts = c.charts()
    assert len(charts) == 2
    first = c.strategy("grid").repeats[0]
    assert charts[0].labels == ("grid", "random")  # type: ignore[union-attr]
    assert charts[0].xs[0] == tuple(p.energy_j for p in first.curve)  # type: ignore[union-attr]
    assert charts[0].target == c.target_accuracy  # type: ignore[union-attr]
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattwise",
            "report",
            "--study",
            c.study_id or "",
            "--out",
            str(out),
        ],
        env=dict(child_env, WATTWISE_STORE=str(path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert html.count("<svg") == 2
    assert "Anytime curves, repeat 1 of 2" in html and "Anytime curves, repeat 2 of 2" in html
