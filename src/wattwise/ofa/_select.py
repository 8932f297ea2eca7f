"""Selection: the best sub-network of a trained elastic network for each deployment budget.

Once-for-All (Cai et al., ICLR 2020) trains one network and *specialises* it per target
without retraining: for each budget, search the space for the most accurate sub-network
that fits. Here every candidate is exported (:meth:`ElasticNetwork.export`), its accuracy
is measured on the held-out validation split, and its energy per inference and latency are
**measured** under the measurement protocol (:func:`wattwise.protocol.measure`, each repeat
a tracker window) on one fixed batch of validation inputs, never guessed from a model.

Measuring costs energy and time, so the number of candidates measured per selection is
bounded (``max_measured``, said in the result), candidates are shared by every budget, and
a candidate measured before under the same conditions is read back from the store
(:mod:`wattwise.ofa._select_cache`) instead of measured again.

Search: ``exhaustive`` measures every sub-network of a small space; ``evolution`` is the
paper's evolutionary search (population, mutation, crossover from
:class:`~wattwise.ofa.ElasticSpace`), keeping only candidates within the budget as
measured and maximising accuracy; ``auto`` is exhaustive when the space fits in
``max_measured``. With ``energy="predicted"`` (the default) the search ranks by a cost
predictor and measures only its choices (:mod:`wattwise.ofa._select_predict`).

The settings' checks and the target's setup (:mod:`wattwise.ofa._select_setup`), the
predicted search, the pool, the cache and the predictor are modules of their own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from typing import Protocol as Protocol_

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._records import Provenance
from wattwise._units import format_energy
from wattwise.ofa._budget import Budget, parse_budget
from wattwise.ofa._records import SELECTION_KIND, BudgetChoice, Candidate, Selection
from wattwise.ofa._select_cache import cache_study_id
from wattwise.ofa._select_pool import CandidatePool, save_subnet
from wattwise.ofa._select_predict import (
    Evolution,
    PredictedOutcome,
    select_predicted,
    with_predictions,
)
from wattwise.ofa._select_setup import ENERGY_MODES, SEARCHES, SearchSettings, SelectTarget
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig
from wattwise.protocol import LeverContext, Protocol, StudySession, study_session

if TYPE_CHECKING:
    from wattwise.workloads import DataSplit

__all__ = ["ENERGY_MODES", "SEARCHES", "SELECT_PROTOCOL", "select"]

#: The default protocol of a selection: per candidate two warm-up passes, then three
#: windows of at least 0.2 s and 3 passes each.
SELECT_PROTOCOL = Protocol(repeats=3, warmup=2, min_time_s=0.2, min_calls=3)

_EVAL_BATCH = 256


def _rank(budget: Budget) -> Callable[[Candidate], tuple[int, float, float]]:
    """Best first (sort descending): fitting ones by accuracy, then by less energy; the
    others by how close they come to the budget."""

    def key(c: Candidate) -> tuple[int, float, float]:
        value = c.energy_per_item_j.median if budget.metric == "energy" else c.latency_s.median
        if c.fits(budget):
            return (1, c.accuracy, -value)
        return (0, -value, c.accuracy)

    return key


class _HasConfig(Protocol_):
    @property
    def config(self) -> SubnetConfig: ...


_C = TypeVar("_C", bound=_HasConfig)


def _evolve(
    space: ElasticSpace,
    budget: Budget,
    get: Callable[[list[SubnetConfig]], list[_C]],
    rank: Callable[[_C], tuple[int, float, float]],
    rng: random.Random,
    *,
    population: int,
    generations: int,
    mutate_prob: float,
) -> None:
    """The evolutionary search of one budget: ``get`` makes (measures or predicts) the
    candidates of configs, ``rank`` orders them best first."""
    first = [space.largest(), space.smallest()]
    pop = get(first + [space.sample(rng) for _ in range(population - len(first))])
    n_parents = max(2, population // 4)
    for _ in range(generations):
        if not pop:
            return
        parents = sorted(pop, key=rank, reverse=True)[:n_parents]
        children: list[SubnetConfig] = []
        while len(children) < population - len(parents):
            if len(parents) < 2 or rng.random() < 0.5:
                children.append(space.mutate(rng.choice(parents).config, rng, mutate_prob))
            else:
                a, b = rng.sample(parents, 2)
                children.append(space.crossover(a.config, b.config, rng))
        pop = parents + [c for c in get(children) if c not in parents]


def _choose(budget: Budget, candidates: list[Candidate]) -> BudgetChoice:
    fitting = [c for c in candidates if c.fits(budget)]
    if fitting:
        best = max(fitting, key=_rank(budget))
        return BudgetChoice(budget, best, True, len(fitting))
    if not candidates:
        return BudgetChoice(budget, None, False, 0, "no candidate was measured")
    if budget.metric == "energy":
        low = min(candidates, key=lambda c: c.energy_per_item_j.median)
        figure = f"{format_energy(low.energy_per_item_j.median)} per inference"
    else:
        low = min(candidates, key=lambda c: c.latency_s.median)
        figure = f"{low.latency_ms:.3g} ms"
    note = (
        f"the least demanding of the {len(candidates)} measured, {low.key}, needs {figure} "
        f"against {budget.text}"
    )
    return BudgetChoice(budget, None, False, 0, note)


def _confirmed(
    budget: Budget,
    candidates: list[Candidate],
    remeasure: Callable[[Candidate], Candidate],
    tries: int,
) -> BudgetChoice:
    """:func:`_choose`, then the choice measured again: the most accurate candidate whose
    second measurement fits too, among the ``tries`` most accurate that fitted at first."""
    first = _choose(budget, candidates)
    if tries == 0 or first.chosen is None:
        return first
    ranked = sorted((c for c in candidates if c.fits(budget)), key=_rank(budget), reverse=True)
    rejected: list[str] = []
    for candidate in ranked[:tries]:
        again = remeasure(candidate)
        if again.fits(budget):
            note = (
                f"{len(rejected)} more accurate candidate(s) fitted at first but not when "
                "measured again"
                if rejected
                else ""
            )
            return replace(
                first, chosen=candidate, confirmation=again, rejected=tuple(rejected), note=note
            )
        rejected.append(candidate.key)
    note = (
        f"the {len(rejected)} most accurate candidate(s) within {budget.text} when first "
        "measured did not fit it when measured again (the measurements' spread is wider than "
        "the budget's margin): give the budget a margin, or more repeats"
    )
    return replace(first, chosen=None, meets_budget=False, rejected=tuple(rejected), note=note)


def select(
    net: ElasticNetwork,
    data: DataSplit,
    budgets: Sequence[Budget | str],
    *,
    context: LeverContext | None = None,
    protocol: Protocol | None = None,
    batch_size: int = 1,
    search: str = "auto",
    population: int = 16,
    generations: int = 6,
    mutate_prob: float = 0.2,
    max_measured: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    space: ElasticSpace | None = None,
    network: str | None = None,
    meters_label: str | None = None,
    export_dir: Path | None = None,
    name: str | None = None,
    confirm: int = 3,
    energy: str = "predicted",
    calibration: int = 12,
    predict_margin: float = 1.0,
) -> Selection:
    """For each budget, the most accurate sub-network of ``net`` whose energy per
    inference (or latency) fits it as measured.

    With ``energy="predicted"`` (the default) a calibration set of ``calibration``
    sub-networks is measured (cached in the store), a :class:`~wattwise.ofa.CostPredictor`
    fitted to it once for all budgets, the search ranks candidates by validation accuracy
    and predicted cost, and only the choices are measured: a choice is kept when its
    measurement fits (up to ``confirm`` tries per budget). ``energy="measured"`` measures
    every candidate the search meets (up to ``max_measured``) and chooses by those
    measurements, confirmed by a second one.

    Args:
        net: a trained elastic network (also an ``nn.Module``).
        data: the dataset; accuracy is measured on its validation split.
        budgets: the budgets (:class:`Budget` or text such as ``50uJ``, ``2ms``).
        context: meters, store, scope and progress (None: ``LeverContext()``); the
            selection is stored as an ``ofa-selection`` study, the measured candidates in
            the cache, unless the store is False.
        protocol: how each candidate is measured (None: :data:`SELECT_PROTOCOL`).
        batch_size: inputs per measured forward pass (energy per inference is per input).
        search: ``auto``, ``exhaustive`` or ``evolution``.
        population: candidates per generation of the evolution.
        generations: generations of the evolution (per budget).
        mutate_prob: the chance each choice is redrawn by a mutation.
        max_measured: the most candidates this selection measures (cached ones are free).
        seed: seed of the evolution.
        device: where the sub-networks run (``cpu``, ``cuda``, ``cuda:N``, ``auto``).
        space: search this space (a restriction of ``net.space``; None: all of it).
        network: how to name the network (None: its class).
        meters_label: what names the meters in the cache's key (None: ``auto``, or the
            class names of the context's meters).
        export_dir: write each chosen sub-network there (:func:`save_subnet`), only when
            every budget was met.
        name: the study's name.
        confirm: measure each choice once more and keep it only if that measurement fits
            too, trying up to this many candidates per budget (0: no confirmation). The
            confirmations are measured even when every candidate was cached. With
            ``predicted``: the candidates measured per budget (>= 1).
        energy: ``predicted`` or ``measured`` (see above).
        calibration: sub-networks measured to fit the predictor (``predicted``; 5 to
            ``max_measured``), spread over the space by MACs.
        predict_margin: a candidate is predicted to fit when its prediction plus this many
            one-sigma uncertainties of the predictor fits (``predicted``).

    Raises:
        ConfigError: no budgets, a bad budget or search setting, a network that is not a
            module, a space that is not the network's, a device that is not here.
    """
    started = time.perf_counter()
    wanted, space = _checked_target(net, budgets, space)
    protocol = protocol or SELECT_PROTOCOL
    how = SearchSettings.checked(
        space, batch_size=batch_size, search=search, population=population,
        generations=generations, mutate_prob=mutate_prob, max_measured=max_measured, seed=seed,
        confirm=confirm, energy=energy, calibration=calibration, predict_margin=predict_margin,
    )  # fmt: skip
    context = context or LeverContext()
    target = SelectTarget.of(
        net, data, batch_size, device, context, protocol, network, meters_label
    )
    params = {
        "network": target.label,
        "budgets": [b.text for b in wanted],
        **how.params(),
        **{k: v for k, v in target.key.items() if k != "protocol"},
    }
    with study_session(
        context, kind=SELECTION_KIND, name=name or f"ofa select {target.label}", params=params
    ) as session:
        selection = _selected(session, target, space, wanted, how, export_dir, started)
        session.finish(selection.to_dict())
    return selection


def _checked_target(
    net: ElasticNetwork, budgets: Sequence[Budget | str], space: ElasticSpace | None
) -> tuple[list[Budget], ElasticSpace]:
    """The budgets (parsed) and the space to search, after checking them and the network."""
    wanted = [b if isinstance(b, Budget) else parse_budget(b) for b in budgets]
    if not wanted:
        raise ConfigError("give at least one budget (50uJ, 2ms)")
    if not isinstance(net, nn.Module) or not isinstance(net, ElasticNetwork):
        raise ConfigError("select() needs an elastic network module (see ofa.elastic_network)")
    space = space or net.space
    if space.stages != net.space.stages or space.max_depth != net.space.max_depth:
        raise ConfigError("the space to search is not a restriction of the network's")
    return wanted, space


def _selected(
    session: StudySession,
    target: SelectTarget,
    space: ElasticSpace,
    wanted: list[Budget],
    how: SearchSettings,
    export_dir: Path | None,
    started: float,
) -> Selection:
    """The search in the study ``session`` (its measurements one run, linked), the
    choices exported when every budget was met, and the selection they make."""
    pool = CandidatePool(
        target.net, target.inputs, protocol=target.protocol, device=target.device,
        limit=how.max_measured, session=session,
        cache=(cache_study_id(target.key), target.key), run_name=f"ofa select {target.label}",
    )  # fmt: skip
    session.begin(how.planned(space))
    evolve = partial(
        _evolve, population=how.population, generations=how.generations,
        mutate_prob=how.mutate_prob,
    )  # fmt: skip
    outcome: PredictedOutcome | None = None
    try:
        if how.predicted:
            outcome = select_predicted(
                target.net, space, wanted, pool, exhaustive=how.exhaustive,
                search=Evolution(how.population, how.generations, how.mutate_prob),
                calibration=how.calibration, margin=how.predict_margin, tries=how.confirm,
                rng=random.Random(how.seed),
            )  # fmt: skip
            choices = outcome.choices
        else:
            choices = _measured_choices(
                space, wanted, pool, exhaustive=how.exhaustive, evolve=evolve,
                confirm=how.confirm, rng=random.Random(how.seed),
            )  # fmt: skip
    finally:
        run_id = pool.close()
    if run_id is not None:
        session.link(run_id, "measurements")
    if export_dir is not None and all(c.meets_budget for c in choices):
        choices = [_export(target.net, c, export_dir, target.inputs.batch) for c in choices]
    selection = _selection(
        pool, choices, label=target.label, key=target.key, search=how.search, space=space,
        protocol=target.protocol, run_id=run_id,
        study_id=session.study_id if session.stored else None,
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    if outcome is not None:
        selection = with_predictions(selection, outcome, pool, how.predict_margin)
    if how.small:
        note = (
            f"the space holds {space.size()} sub-networks, no more than the calibration "
            f"set of {how.calibration}: every one was measured (energy 'measured'), none "
            "predicted"
        )
        selection = replace(selection, notes=(*selection.notes, note))
    return selection


def _measured_choices(
    space: ElasticSpace,
    wanted: list[Budget],
    pool: CandidatePool,
    *,
    exhaustive: bool,
    evolve: Callable[..., None],
    confirm: int,
    rng: random.Random,
) -> list[BudgetChoice]:
    """``energy="measured"``: every candidate met is measured; the choices confirmed."""
    if exhaustive:
        pool.get(list(space.enumerate()))
    else:
        for budget in wanted:
            evolve(space, budget, pool.get, _rank(budget), rng)
    found = list(pool.known.values())
    again: dict[str, Candidate] = {}  # one confirmation per candidate, for all budgets

    def remeasure(c: Candidate) -> Candidate:
        if c.key not in again:
            again[c.key] = pool.remeasure(c.config)
        return again[c.key]

    return [_confirmed(b, found, remeasure, confirm) for b in wanted]


def _selection(
    pool: CandidatePool,
    choices: list[BudgetChoice],
    *,
    label: str,
    key: dict[str, Any],
    search: str,
    space: ElasticSpace,
    protocol: Protocol,
    run_id: str | None,
    study_id: str | None,
    seconds: float,
) -> Selection:
    candidates = list(pool.known.values())
    return Selection(
        network=label,
        fingerprint=key["fingerprint"],
        dataset=key["dataset"],
        batch_size=key["batch_size"],
        device=key["device"],
        scope=key["scope"],
        search=search,
        space_size=space.size(),
        max_measured=pool.limit,
        measured=pool.measured,
        cached=pool.cached,
        limit_reached=pool.limit_reached,
        seconds=seconds,
        measuring_seconds=pool.measuring_s,
        confirmations=pool.confirmations,
        candidates=tuple(candidates),
        choices=tuple(choices),
        protocol=protocol.to_dict(),
        run_id=run_id,
        source=str(Provenance.combine(c.source for c in candidates)),
        study_id=study_id,
        notes=_notes(pool, key["batch_size"]),
    )


def _export(
    net: ElasticNetwork, choice: BudgetChoice, export_dir: Path, example: torch.Tensor
) -> BudgetChoice:
    assert choice.chosen is not None
    stem = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in choice.budget.text)
    module = net.export(choice.chosen.config)
    path = save_subnet(module, example, export_dir / f"subnet-{stem}.pt2")
    return replace(choice, export_path=str(path))


def _notes(pool: CandidatePool, batch_size: int) -> tuple[str, ...]:
    notes = [
        f"energy per inference: measured on one fixed batch of {batch_size} validation "
        "input(s), median of the protocol's repeats; a budget is met when that median fits",
        "accuracy: the exported sub-network on the whole validation split, no retraining",
    ]
    if pool.cached:
        notes.append(
            f"{pool.cached} candidate(s) read back from the store (measured before under the "
            "same network, inputs, meters, scope, device and protocol)"
        )
    if pool.confirmations:
        notes.append(
            f"{pool.confirmations} confirming measurement(s): a choice meets its budget only "
            "when it fits both when first measured and when measured again"
        )
    if pool.limit_reached:
        notes.append(
            f"the search met more candidates than the {pool.limit} a selection measures: "
            "the rest were not measured (raise max_measured to search further)"
        )
    return tuple(notes)
