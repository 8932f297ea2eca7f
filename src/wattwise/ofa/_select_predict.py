"""Selection by prediction (``select(..., energy="predicted")``): measure a small
calibration set, fit a cost predictor to it, search by prediction, measure only the choices.

Cai et al., "Once-for-All", ICLR 2020, section 3.4, rank candidates by an accuracy predictor
and a latency table instead of measuring each one. Here accuracy is a validation pass (cheap
on these networks; its energy is tracked in ``accuracy`` windows and reported), and energy
per inference (or latency) is predicted by :class:`~wattwise.ofa.CostPredictor`, fitted once
per :func:`~wattwise.ofa.select` call and shared by all its budgets. A candidate is
*predicted to fit* when its prediction plus ``margin`` one-sigma uncertainties is within the
budget; the most accurate of those is then **measured** under the protocol, and kept only
when that measurement fits (up to ``tries`` candidates per budget). The choice is not picked
by its own measurement, so that measurement is free of the winner's curse of picking the
lowest of many noisy figures.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from wattwise._units import format_energy
from wattwise.ofa._budget import Budget
from wattwise.ofa._predict import calibration_set, features_of, fit_predictor
from wattwise.ofa._records import (
    BudgetChoice,
    Candidate,
    CostPredictor,
    PredictedCandidate,
    Selection,
)
from wattwise.ofa._select_pool import CandidatePool
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig

__all__ = [
    "Evolution",
    "PredictedOutcome",
    "rank_predicted",
    "select_predicted",
    "with_predictions",
]


@dataclass(frozen=True)
class Evolution:
    """The evolutionary search's settings (see :func:`wattwise.ofa.select`)."""

    population: int
    generations: int
    mutate_prob: float


#: Draws (free: predictions only) spent looking for one candidate predicted to fit.
_DRAWS = 50


def _child(
    space: ElasticSpace,
    parents: list[PredictedCandidate],
    rng: random.Random,
    mutate_prob: float,
) -> SubnetConfig:
    """One child of ``parents``: a mutation, or a crossover of two."""
    if len(parents) < 2 or rng.random() < 0.5:
        return space.mutate(rng.choice(parents).config, rng, mutate_prob)
    a, b = rng.sample(parents, 2)
    return space.crossover(a.config, b.config, rng)


def _evolve(
    space: ElasticSpace,
    fits: Callable[[SubnetConfig], bool],
    get: Callable[[list[SubnetConfig]], list[PredictedCandidate]],
    rank: Callable[[PredictedCandidate], tuple[int, float, float]],
    rng: random.Random,
    evo: Evolution,
) -> None:
    """The evolutionary search of one budget under a predictor, as the paper's: every
    candidate drawn (sampled, mutated, crossed) is redrawn until it is predicted to fit
    (a prediction costs nothing), so an accuracy pass is spent only on candidates that can
    be chosen."""

    def valid(draw: Callable[[], SubnetConfig]) -> SubnetConfig | None:
        for _ in range(_DRAWS):
            config = draw()
            if fits(config):
                return config
        return None

    first = [c for c in (space.smallest(), space.largest()) if fits(c)]
    drawn = [valid(lambda: space.sample(rng)) for _ in range(evo.population - len(first))]
    pop = get(first + [c for c in drawn if c is not None])
    n_parents = max(2, evo.population // 4)
    for _ in range(evo.generations):
        if not pop:
            return
        parents = sorted(pop, key=rank, reverse=True)[:n_parents]
        children: list[SubnetConfig] = []
        for _ in range(evo.population - len(parents)):
            child = valid(partial(_child, space, parents, rng, evo.mutate_prob))
            if child is not None:
                children.append(child)
        pop = parents + [c for c in get(children) if c not in parents]


@dataclass(frozen=True)
class PredictedOutcome:
    """What a predicted selection found: a choice per budget, the predictors, every
    candidate ranked, and the calibration set measured."""

    choices: list[BudgetChoice]
    predictors: tuple[CostPredictor, CostPredictor]
    predicted: tuple[PredictedCandidate, ...]
    calibration: tuple[Candidate, ...]


def _upper(p: PredictedCandidate, metric: str, margin: float) -> float:
    value, sd = p.value(metric)
    return value + margin * sd


def rank_predicted(
    budget: Budget, margin: float
) -> Callable[[PredictedCandidate], tuple[int, float, float]]:
    """Best first (sort descending): those predicted to fit by accuracy, then by less
    predicted cost; the others by how close their prediction comes to the budget."""

    def key(p: PredictedCandidate) -> tuple[int, float, float]:
        upper = _upper(p, budget.metric, margin)
        if upper <= budget.limit:
            return (1, p.accuracy, -upper)
        return (0, -upper, p.accuracy)

    return key


def _choose(
    budget: Budget,
    found: list[PredictedCandidate],
    measure: Callable[[PredictedCandidate], Candidate],
    *,
    margin: float,
    tries: int,
) -> BudgetChoice:
    """The most accurate candidate predicted to fit whose measurement fits, among the
    ``tries`` most accurate predicted to fit."""
    rank = rank_predicted(budget, margin)
    fitting = sorted((p for p in found if rank(p)[0] == 1), key=rank, reverse=True)
    if not fitting:
        if not found:
            return BudgetChoice(budget, None, False, 0, "no candidate was ranked")
        low = min(found, key=lambda p: _upper(p, budget.metric, margin))
        value, sd = low.value(budget.metric)
        figure = (
            f"{format_energy(value)} ± {format_energy(sd)} per inference"
            if budget.metric == "energy"
            else f"{value * 1e3:.3g} ± {sd * 1e3:.2g} ms"
        )
        note = (
            f"none of the {len(found)} ranked is predicted to fit (prediction + {margin:g} "
            f"sigma): the least demanding, {low.key}, is predicted at {figure} against "
            f"{budget.text}"
        )
        return BudgetChoice(budget, None, False, 0, note)
    rejected: list[str] = []
    for p in fitting[:tries]:
        measured = measure(p)
        if measured.fits(budget):
            note = (
                f"{len(rejected)} more accurate candidate(s) predicted to fit did not when measured"
                if rejected
                else ""
            )
            return BudgetChoice(
                budget, measured, True, len(fitting), note, rejected=tuple(rejected), prediction=p
            )
        rejected.append(p.key)
    note = (
        f"the {len(rejected)} most accurate candidate(s) predicted to fit {budget.text} did "
        "not fit it when measured: give the budget a margin, a larger predict margin or a "
        "larger calibration set"
    )
    return BudgetChoice(budget, None, False, len(fitting), note, rejected=tuple(rejected))


def select_predicted(
    net: ElasticNetwork,
    space: ElasticSpace,
    budgets: list[Budget],
    pool: CandidatePool,
    *,
    exhaustive: bool,
    search: Evolution,
    calibration: int,
    margin: float,
    tries: int,
    rng: random.Random,
) -> PredictedOutcome:
    """Calibrate, fit, search by prediction and measure the choices (see the module)."""
    pool.start()  # the calibration, the accuracy passes and the choices, all in the run
    calib = pool.get(calibration_set(net, space, calibration, rng))
    rows = [features_of(net, c.config) for c in calib]
    energy = fit_predictor("energy_per_item_j", calib, rows)
    latency = fit_predictor("latency_s", calib, rows)
    ranked: dict[str, PredictedCandidate] = {}

    def get(configs: list[SubnetConfig]) -> list[PredictedCandidate]:
        accuracy = pool.accuracies(configs)
        out = []
        for config in configs:
            c = space.canonical(config)
            if c.key not in ranked:
                f = features_of(net, c)
                ranked[c.key] = PredictedCandidate(
                    key=c.key,
                    config=c,
                    accuracy=accuracy[c.key],
                    predicted_energy_per_item_j=energy.predict(f),
                    predicted_energy_sd_j=energy.residual_sd,
                    predicted_latency_s=latency.predict(f),
                    predicted_latency_sd_s=latency.residual_sd,
                    macs=int(f[0]),
                    params=int(f[1]),
                )
            out.append(ranked[c.key])
        return list({p.key: p for p in out}.values())

    def fits_for(budget: Budget) -> Callable[[SubnetConfig], bool]:
        model = energy if budget.metric == "energy" else latency

        def fits(config: SubnetConfig) -> bool:
            return model.predict(features_of(net, config)) + margin * model.residual_sd <= (
                budget.limit
            )

        return fits

    get([space.smallest()])  # always ranked: the least demanding, for a budget none fits
    if exhaustive:
        get(list(space.enumerate()))
    else:
        for budget in budgets:
            _evolve(space, fits_for(budget), get, rank_predicted(budget, margin), rng, search)
    found = list(ranked.values())
    measured: dict[str, Candidate] = {}  # a candidate two budgets try is measured once

    def measure(p: PredictedCandidate) -> Candidate:
        if p.key not in measured:
            measured[p.key] = pool.measure_now(p.config, p.accuracy)
        return measured[p.key]

    choices = [_choose(b, found, measure, margin=margin, tries=tries) for b in budgets]
    return PredictedOutcome(choices, (energy, latency), tuple(found), tuple(calib))


def with_predictions(
    selection: Selection, outcome: PredictedOutcome, pool: CandidatePool, margin: float
) -> Selection:
    """``selection`` with what the predicted search found and its notes."""
    energy = outcome.predictors[0]
    notes = (
        f"energy per inference: PREDICTED for the {len(outcome.predicted)} ranked candidates "
        f"by a fit (MACs, parameters, activations, blocks; non-negative least squares) to "
        f"{len(outcome.calibration)} measured sub-networks, residual spread "
        f"{format_energy(energy.residual_sd)} (leave-one-out {format_energy(energy.loo_rmse)}, "
        f"R² {energy.r2:.2f}); a candidate is predicted to fit when its prediction + "
        f"{margin:g} sigma does; each choice is then MEASURED and kept only when that "
        "measurement fits",
        f"accuracy: {pool.evaluations} validation pass(es), {pool.accuracy_s:.1f} s, "
        f"{format_energy(pool.accuracy_j)} (in the selection's run)",
    )
    return replace(
        selection,
        energy="predicted",
        predictors=outcome.predictors,
        predicted=outcome.predicted,
        accuracy_evaluations=pool.evaluations,
        accuracy_seconds=pool.accuracy_s,
        accuracy_energy_j=pool.accuracy_j,
        predict_margin=margin,
        notes=notes
        + tuple(n for n in selection.notes[2:] if "confirming measurement" not in n)
        + (
            f"{pool.confirmations} measurement(s) of choices after the search: a choice "
            "meets its budget only when its measurement fits",
        ),
    )
