"""The result of :func:`wattwise.train.fit`: the run's (or its window's) totals, and the
prediction of the full planned run's energy when it stopped early."""

from __future__ import annotations

import torch

from wattwise._records import Provenance
from wattwise.tracking._tracker import Tracker, Window
from wattwise.train._callbacks import TrainState
from wattwise.train._predict import predict_total
from wattwise.train._records import EnergyPrediction, FitResult, StopDecision

__all__ = ["fit_result"]


def fit_result(
    state: TrainState,
    tracker: Tracker,
    outer: Window | None,
    stop_decision: StopDecision | None,
    duration: float,
    device: torch.device,
    interrupt: KeyboardInterrupt | None,
) -> FitResult:
    """The fit's result: the run's (or its window's) totals and the prediction."""
    if outer is not None:
        assert outer.result is not None
        total, unc, comps = (
            outer.result.energy_j,
            outer.result.uncertainty_j,
            outer.result.components,
        )
        run = None
    else:
        run = tracker.result
        assert run is not None
        total, unc, comps = run.energy_j, run.uncertainty_j, run.components
        duration = run.duration_s
    source = str(Provenance.from_components(comps))
    final_prediction: EnergyPrediction | None = None
    saved = 0.0
    if stop_decision is not None and interrupt is None:
        energies = [e.energy_j for e in state.history]
        final_prediction = predict_total(
            energies,
            state.planned_epochs,
            overhead_j=max(total - sum(energies), 0.0),
            source=source,
        )
        saved = final_prediction.total_j - total
    return FitResult(
        epochs=tuple(state.history),
        planned_epochs=state.planned_epochs,
        stop=stop_decision,
        total_energy_j=total,
        total_uncertainty_j=unc,
        energy_source=source,
        duration_s=duration,
        prediction=final_prediction,
        energy_saved_j=saved,
        device=str(device),
        run_id=tracker.run_id,
        run=run,
        interrupted=interrupt is not None,
    )
