"""What a selection finds: every measured sub-network, and the one chosen per budget.

A :class:`Selection` is stored as the results of an ``ofa-selection`` study; it loads back
typed (:func:`wattwise._records.load_record`) and draws its energy/accuracy Pareto front in
``wattwise report --study`` (:meth:`Selection.charts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wattwise._errors import ConfigError
from wattwise._pareto import pareto_mask
from wattwise._records import ChartData, FrontData, Record
from wattwise._units import format_energy
from wattwise.ofa._budget import Budget
from wattwise.ofa._space import SubnetConfig
from wattwise.protocol import Summary

__all__ = [
    "SELECTION_KIND",
    "BudgetChoice",
    "Candidate",
    "CostPredictor",
    "PredictedCandidate",
    "Selection",
]

#: The study kind a selection is stored as.
SELECTION_KIND = "ofa-selection"


@dataclass(frozen=True)
class Candidate(Record):
    """One sub-network: its validation accuracy and its energy per inference, measured.

    Attributes:
        key: the sub-network's name (:attr:`SubnetConfig.key` of its canonical config).
        config: its config (canonical).
        accuracy: share of the validation split it classifies right (0..1), no retraining.
        energy_per_item_j: energy per inference over the protocol's repeats, in J (median
            in the JSON, the repeats under ``energy_per_item_j_spread``).
        latency_s: wall time of one forward pass of the measured batch over the repeats,
            in s.
        uncertainty_per_item_j: one-sigma uncertainty of the energy per inference (the
            meters' own, over all repeats), in J.
        source: where the energy comes from (``measured (rapl-powercap)``,
            ``estimated (cpu-tdp-utilisation)``).
        params: parameters of the exported sub-network (count).
        run_id: the tracker run it was measured in.
        cached: read back from the store (measured by an earlier selection), not
            measured again now.
    """

    key: str
    config: SubnetConfig
    accuracy: float
    energy_per_item_j: Summary = field(metadata={"spread": True})
    latency_s: Summary = field(metadata={"spread": True})
    uncertainty_per_item_j: float
    source: str
    params: int
    run_id: str
    cached: bool = False

    derived: ClassVar[tuple[str, ...]] = ("latency_ms",)

    @property
    def latency_ms(self) -> float:
        """Median wall time of one forward pass, in ms."""
        return self.latency_s.median * 1e3

    def fits(self, budget: Budget) -> bool:
        """Whether the measured median fits ``budget``."""
        return budget.allows(self.energy_per_item_j.median, self.latency_s.median)


@dataclass(frozen=True)
class CostPredictor(Record):
    """A linear prediction of one measured quantity from architecture features, fitted by
    non-negative least squares to a measured calibration set.

    Attributes:
        quantity: what it predicts: ``energy_per_item_j`` (J per inference) or
            ``latency_s`` (s per forward pass of the measured batch).
        features: the features, in the order of ``coefficients[1:]``.
        coefficients: the intercept, then one coefficient per feature (quantity per unit).
        residual_sd: one-sigma spread of the calibration measurements around the fit (in
            the quantity's unit, degrees of freedom corrected): a prediction's uncertainty.
        loo_rmse: root mean square error of leave-one-out predictions of the calibration
            set (each point predicted by the fit to the others), in the quantity's unit.
        r2: share of the calibration measurements' variance the fit explains.
        calibration: the calibration sub-networks' keys.
        measured: their measured values (median of the protocol's repeats).
        fitted: the fit's values for them.
        method: how it was fitted.
    """

    quantity: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    residual_sd: float
    loo_rmse: float
    r2: float
    calibration: tuple[str, ...]
    measured: tuple[float, ...]
    fitted: tuple[float, ...]
    method: str = "non-negative least squares (scipy.optimize.nnls)"

    def predict(self, features: Sequence[float]) -> float:
        """The predicted value for one sub-network's features."""
        if len(features) != len(self.features):
            raise ConfigError(f"expected {len(self.features)} features, got {len(features)}")
        terms = zip(self.coefficients[1:], features, strict=True)
        return float(self.coefficients[0] + sum(c * float(f) for c, f in terms))


@dataclass(frozen=True)
class PredictedCandidate(Record):
    """A sub-network the search ranked by prediction: its validation accuracy (measured:
    a pass over the validation split) and its **predicted** cost (not a measurement).

    Attributes:
        key: the sub-network's name (canonical config).
        config: its config (canonical).
        accuracy: share of the validation split it classifies right (0..1).
        predicted_energy_per_item_j: predicted energy per inference, in J.
        predicted_energy_sd_j: its one-sigma uncertainty (the predictor's residual spread).
        predicted_latency_s: predicted wall time of one forward pass, in s.
        predicted_latency_sd_s: its one-sigma uncertainty.
        macs: multiply-accumulates per item (count).
        params: parameters (count).
    """

    key: str
    config: SubnetConfig
    accuracy: float
    predicted_energy_per_item_j: float
    predicted_energy_sd_j: float
    predicted_latency_s: float
    predicted_latency_sd_s: float
    macs: int
    params: int

    def value(self, metric: str) -> tuple[float, float]:
        """The prediction for ``energy`` or ``latency``, and its one-sigma uncertainty."""
        if metric == "energy":
            return self.predicted_energy_per_item_j, self.predicted_energy_sd_j
        return self.predicted_latency_s, self.predicted_latency_sd_s


@dataclass(frozen=True)
class BudgetChoice(Record):
    """The sub-network chosen for one budget.

    Attributes:
        budget: the budget.
        chosen: the most accurate measured sub-network within it, or None when none fits.
        meets_budget: ``chosen`` fits the budget as measured (median of the repeats).
        fitting: measured sub-networks within the budget.
        note: why nothing was chosen, or what to keep in mind; empty otherwise.
        export_path: where the chosen sub-network was written (``--export-dir``), or None.
        confirmation: ``chosen`` measured once more after the search, or None (not asked,
            or nothing chosen). The most accurate of many noisy figures within a budget
            tends to be one that measured low; an independent measurement is free of
            that bias, so with confirmation a choice meets its budget only when both
            measurements fit it.
        rejected: candidates that fitted when first measured (or predicted) but not when
            confirmed (measured).
        prediction: with ``energy="predicted"``, what the search saw of ``chosen`` (its
            **predicted** cost, labelled as such); ``chosen`` is then its measurement,
            made after the search, which decides ``meets_budget``. None otherwise.
    """

    budget: Budget
    chosen: Candidate | None
    meets_budget: bool
    fitting: int
    note: str = ""
    export_path: str | None = None
    confirmation: Candidate | None = None
    rejected: tuple[str, ...] = ()
    prediction: PredictedCandidate | None = None


@dataclass(frozen=True)
class Selection(Record):
    """The sub-networks chosen from one elastic network, one per budget, with no
    retraining (Cai et al., "Once-for-All", ICLR 2020).

    Attributes:
        network: what the elastic network is (its builder's spec, or its class).
        fingerprint: hash of its weights and space (the cache's key).
        dataset: the dataset whose validation split gave the accuracies.
        batch_size: inputs per measured forward pass.
        device: where the sub-networks ran.
        scope: ``machine`` or ``process``.
        search: ``exhaustive`` or ``evolution``.
        space_size: distinct sub-networks in the searched space.
        max_measured: the most candidates one selection measures.
        measured: candidates measured now.
        cached: candidates read back from the store instead.
        limit_reached: the search wanted more candidates than ``max_measured``.
        seconds: wall time of the whole selection, in s.
        measuring_seconds: wall time spent measuring energy (warm-up included), in s.
        confirmations: measurements made to confirm choices (see ``BudgetChoice``).
        energy: how the search saw a candidate's cost: ``measured`` (every candidate
            measured) or ``predicted`` (a predictor fitted to a measured calibration set,
            only the choices measured).
        predictors: with ``predicted``, the fitted predictors (energy, latency).
        predicted: with ``predicted``, every candidate the search ranked (accuracy
            measured on the validation split, cost predicted).
        accuracy_evaluations: validation passes the search made (``predicted``).
        accuracy_seconds: their wall time, in s.
        accuracy_energy_j: their energy, in J (tracker windows ``accuracy``; the same
            meters as the measurements).
        predict_margin: a candidate is predicted to fit when its prediction plus this many
            of its one-sigma uncertainties fits.
        candidates: every candidate measured or read back, in the order they were met.
        choices: one per budget, in the order given.
        protocol: the measurement protocol (``Protocol.to_dict()``).
        run_id: the tracker run of the measurements made now (None: all cached).
        source: where the energy comes from (all candidates).
        study_id: the stored study, or None.
        notes: what the figures include and exclude.
    """

    network: str
    fingerprint: str
    dataset: str
    batch_size: int
    device: str
    scope: str
    search: str
    space_size: int
    max_measured: int
    measured: int
    cached: int
    limit_reached: bool
    seconds: float
    measuring_seconds: float
    candidates: tuple[Candidate, ...]
    choices: tuple[BudgetChoice, ...]
    protocol: dict[str, Any]
    run_id: str | None
    source: str
    study_id: str | None = None
    notes: tuple[str, ...] = ()
    confirmations: int = 0
    energy: str = "measured"
    predictors: tuple[CostPredictor, ...] = ()
    predicted: tuple[PredictedCandidate, ...] = ()
    accuracy_evaluations: int = 0
    accuracy_seconds: float = 0.0
    accuracy_energy_j: float = 0.0
    predict_margin: float = 0.0

    kind: ClassVar[str] = SELECTION_KIND
    derived: ClassVar[tuple[str, ...]] = ("pareto_front", "all_met")

    @property
    def pareto_front(self) -> list[str]:
        """Keys of the candidates no other beats on both energy and accuracy."""
        energies = [c.energy_per_item_j.median for c in self.candidates]
        mask = pareto_mask(energies, [c.accuracy for c in self.candidates])
        return [c.key for c, on in zip(self.candidates, mask, strict=True) if on]

    @property
    def all_met(self) -> bool:
        """Every budget got a sub-network that fits it as measured."""
        return all(c.meets_budget for c in self.choices)

    def choice(self, budget: Budget) -> BudgetChoice:
        """The choice made for ``budget``.

        Raises:
            KeyError: that budget was not asked for.
        """
        for c in self.choices:
            if c.budget == budget:
                return c
        raise KeyError(budget.text)

    def charts(self) -> tuple[ChartData, ...]:
        """Energy per inference against accuracy of every candidate, the chosen labelled."""
        labels: dict[str, list[str]] = {}
        for choice in self.choices:
            if choice.chosen is not None:
                labels.setdefault(choice.chosen.key, []).append(f"≤ {choice.budget.text}")
        measured = (
            FrontData(
                tuple(", ".join(labels.get(c.key, [])) for c in self.candidates),
                tuple(c.energy_per_item_j.median for c in self.candidates),
                tuple(c.accuracy for c in self.candidates),
                "energy per inference (J)",
                "validation accuracy",
                f"Energy per inference against validation accuracy of the "
                f"{len(self.candidates)} sub-networks measured ({self.source}), with the "
                "Pareto front; the chosen ones labelled by their budget.",
            ),
        )
        if not self.predicted:
            return measured
        predicted = (
            FrontData(
                tuple(", ".join(labels.get(p.key, [])) for p in self.predicted),
                tuple(p.predicted_energy_per_item_j for p in self.predicted),
                tuple(p.accuracy for p in self.predicted),
                "predicted energy per inference (J)",
                "validation accuracy",
                f"PREDICTED energy per inference (not measured: a fit to the "
                f"{len(self.candidates)} measured) against validation accuracy of the "
                f"{len(self.predicted)} sub-networks the search ranked; the chosen ones "
                "labelled by their budget (their measurements are in the choices).",
            ),
        )
        return (*measured, *predicted)

    def describe(self, choice: BudgetChoice) -> str:
        """One line for a choice: what was chosen and its figures, or that nothing fits."""
        c = choice.chosen
        if c is None:
            return f"{choice.budget.text}: no sub-network fits ({choice.note})"
        figure = (
            format_energy(c.energy_per_item_j.median)
            if choice.budget.metric == "energy"
            else f"{c.latency_ms:.3g} ms"
        )
        line = f"{choice.budget.text}: {c.key}, accuracy {c.accuracy:.4f}, {figure} measured"
        p = choice.prediction
        if p is not None:
            value, sd = p.value(choice.budget.metric)
            told = (
                format_energy(value) + f" ± {format_energy(sd)}"
                if choice.budget.metric == "energy"
                else f"{value * 1e3:.3g} ± {sd * 1e3:.2g} ms"
            )
            line += f" (predicted {told})"
        return line
