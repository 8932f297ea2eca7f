"""The learning-curve stopping rule: its fit, when it stops, its CLI form, and stopping a
real digits run and a foreign loop's recorder (the framework callbacks' shared part)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

torch.set_num_threads(1)  # see tests/test_train.py

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.train import (  # noqa: E402
    CURVE_FAMILIES,
    EnergyBudget,
    EpochRecord,
    LearningCurve,
    StopContext,
    fit,
    forecast_curve,
    parse_stop,
    predict_total,
)
from wattwise.train._history import history_id  # noqa: E402
from wattwise.train._recorder import EpochEnergyRecorder  # noqa: E402
from wattwise.workloads import build_model, load_dataset  # noqa: E402

CPU = Component("cpu", ComponentKind.CPU, Source(Method.MEASURED, "replayed-sensor"))


def _meter() -> ReplayMeter:
    return ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, 8.0 * 36000.0)])


def _history(accs: Sequence[float]) -> list[EpochRecord]:
    return [
        EpochRecord(i + 1, 10.0, 0.0, 1.0, 10.0, 0.0, 1.0, 1.0 - a, float(a), "estimated (t)")
        for i, a in enumerate(accs)
    ]


def _ctx(accs: Sequence[float], planned: int = 60) -> StopContext:
    history = _history(accs)
    energies = [e.energy_j for e in history]
    return StopContext(history, planned, sum(energies), predict_total(energies, planned))


def _curve(n: int, noise: float = 0.0, seed: int = 0) -> list[float]:
    """A power-law learning curve 0.95 - 0.5 t^-0.8, with Gaussian noise of ``noise``."""
    t = np.arange(1, n + 1, dtype=float)
    rng = np.random.default_rng(seed)
    return list(0.95 - 0.5 * t**-0.8 + rng.normal(0.0, noise, n))


def test_the_forecast_recovers_the_final_accuracy_of_a_noisy_curve() -> None:
    truth = _curve(60)[-1]
    f = LearningCurve().forecast(_curve(20, noise=0.005), 60)
    assert f is not None and f.family in CURVE_FAMILIES
    assert f.predicted_final == pytest.approx(truth, abs=0.01)
    assert f.gain > 0 and f.gain_sigma > 0
    assert f.shortfall == pytest.approx(f.predicted_final - f.measured_now)
    # More noise, wider uncertainty.
    g = LearningCurve().forecast(_curve(20, noise=0.03), 60)
    assert g is not None and g.gain_sigma > f.gain_sigma


def _saturating(n: int, noise: float = 0.0, seed: int = 0) -> list[float]:
    """A curve that saturates at 0.92 (a Weibull: 0.92 - 0.6 exp(-(t/6)^0.8)) with noise."""
    t = np.arange(1, n + 1, dtype=float)
    rng = np.random.default_rng(seed)
    return list(0.92 - 0.6 * np.exp(-((t / 6) ** 0.8)) + rng.normal(0.0, noise, n))


def test_the_backtest_picks_the_family_that_predicted_the_held_out_epochs() -> None:
    # A saturating curve: the power law runs on towards its ceiling, the backtest sees
    # that and picks a saturating family, whose forecast is right.
    accs = _saturating(30, noise=0.002)
    truth = _saturating(60)[-1]
    chosen = forecast_curve(accs, 60)
    pow3 = forecast_curve(accs, 60, families=["pow3"])
    assert chosen is not None and pow3 is not None
    assert chosen.family != "pow3" and chosen.backtest_epochs == 7
    assert abs(chosen.predicted_final - truth) < abs(pow3.predicted_final - truth)
    assert chosen.predicted_final == pytest.approx(truth, abs=0.005)
    # One family: no backtest.
    assert pow3.family == "pow3" and pow3.backtest_epochs == 0
    with pytest.raises(ValueError, match="families"):
        forecast_curve(accs, 60, families=["cubic"])


def test_it_stops_once_the_model_in_hand_is_within_the_tolerance_of_the_predicted_end() -> None:
    rule = LearningCurve(tolerance=0.01, min_epochs=5)
    # Early on the curve still climbs: 0.95 - 0.5 * 5**-0.8 is 0.81, far from 0.93 at 60.
    assert rule.check(_ctx(_curve(5, noise=0.002))) is None
    # Late, the model in hand is close to the predicted end (0.931 -> 0.933, 50 -> 60).
    reason = rule.check(_ctx(_curve(50, noise=0.002)))
    assert reason is not None and reason.startswith("curve: ")
    assert "at epoch 60" in reason and "below the tolerance of 1 pp" in reason
    assert "the model now measures" in reason
    # A flat curve stops, but never before min_epochs.
    assert rule.check(_ctx([0.97] * 4)) is None
    assert rule.check(_ctx([0.97] * 5)) is not None
    # A bigger tolerance stops the climbing curve sooner.
    assert LearningCurve(tolerance=0.2).check(_ctx(_curve(12, noise=0.002))) is not None
    assert rule.check(_ctx(_curve(12, noise=0.002))) is None


def test_an_unlucky_low_epoch_does_not_stop_the_run_but_a_lucky_one_may() -> None:
    # The rule compares the accuracy measured now (the model the user keeps), not the
    # fitted value: the same curve with its last epoch 2 pp lower is not within 1 pp.
    accs = _saturating(40, noise=0.001)
    rule = LearningCurve(tolerance=0.01, min_epochs=10)
    assert rule.check(_ctx(accs)) is not None
    assert rule.check(_ctx([*accs[:-1], accs[-1] - 0.02])) is None


def test_the_guard_keeps_training_while_the_curve_outruns_its_backtest() -> None:
    # Flat for 12 epochs, then a jump (a learning-rate drop, say): the fit of the first
    # epochs under-predicted the latest ones, so the rule does not trust it yet.
    accs = [0.80 + 0.001 * i for i in range(12)] + [0.86, 0.87, 0.875, 0.88]
    f = forecast_curve(accs, 60)
    assert f is not None and f.backtest_bias > 0.005
    assert LearningCurve(tolerance=0.01, min_epochs=10, z=0.0).check(_ctx(accs)) is None
    # With a tolerance that lets anything through, only the guard keeps the run going.
    loose = f.shortfall + f.gain_sigma + 0.01
    assert LearningCurve(tolerance=loose, min_epochs=10, guard=math.inf).check(_ctx(accs))
    guard = 0.9 * f.backtest_bias / loose
    assert LearningCurve(tolerance=loose, min_epochs=10, guard=guard).check(_ctx(accs)) is None


def test_a_very_noisy_curve_does_not_stop_on_a_confident_wrong_fit() -> None:
    # A climb buried in +-5 pp noise: the fit's uncertainty keeps the run going.
    accs = _curve(12, noise=0.05, seed=3)
    rule = LearningCurve()
    f = rule.forecast(accs, 60)
    assert f is None or f.shortfall + f.gain_sigma >= 0.01 or f.backtest_bias > 0.005
    assert rule.check(_ctx(accs)) is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="tolerance"):
        LearningCurve(tolerance=0.0)
    with pytest.raises(ConfigError, match="min_epochs >= 3"):
        LearningCurve(min_epochs=2)
    with pytest.raises(ConfigError, match="z must be"):
        LearningCurve(z=-1.0)
    with pytest.raises(ConfigError, match="guard"):
        LearningCurve(guard=0.0)
    with pytest.raises(ConfigError, match="families"):
        LearningCurve(families=["cubic"])


@pytest.mark.parametrize(
    ("spec", "tolerance", "min_epochs"),
    [("curve", 0.01, 10), ("curve:0.02", 0.02, 10), ("curve:0.5pp", 0.005, 10),
     ("CURVE:0.002:8", 0.002, 8)],
)  # fmt: skip
def test_parse_curve(spec: str, tolerance: float, min_epochs: int) -> None:
    rule = parse_stop(spec)
    assert isinstance(rule, LearningCurve)
    assert rule.tolerance == pytest.approx(tolerance) and rule.min_epochs == min_epochs


@pytest.mark.parametrize("spec", ["curve:lots", "curve:0.01:2", "curve:0.01:5:1", "curve:2"])
def test_parse_curve_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_stop(spec)


@pytest.mark.slow
def test_it_stops_a_real_digits_run_and_says_what_it_predicted() -> None:
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("cnn", input_shape=data.input_shape, num_classes=data.num_classes)
    r = fit(
        model,
        data,
        epochs=30,
        stop=[LearningCurve(tolerance=0.05, min_epochs=4)],
        context=LeverContext(meters=lambda: [_meter()], store=False),
    )
    assert r.stop is not None and r.stop.rule == "curve"
    assert 4 <= len(r.epochs) < 30 and r.stop.epoch == len(r.epochs)
    assert "predicts" in r.stop.reason and "at epoch 30" in r.stop.reason


def test_the_recorder_asks_the_rules_and_stores_why(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.sqlite")
    rec = EpochEnergyRecorder(
        "foreign",
        context=LeverContext(meters=lambda: [_meter()], store=url),
        stop=[LearningCurve(tolerance=0.01, min_epochs=4)],
    )
    rec.begin(planned_epochs=10)
    decisions = []
    for i, acc in enumerate([0.9, 0.9, 0.9, 0.9], 1):
        rec.epoch_begin(i)
        result = rec.epoch_end()
        assert result is not None
        decisions.append(rec.check_stop(result, planned_epochs=10, val_accuracy=acc))
    assert decisions[:3] == [None, None, None]  # before min_epochs
    assert decisions[3] is not None and decisions[3].rule == "curve" and decisions[3].epoch == 4
    assert rec.stop_decision == decisions[3]
    assert [e.val_accuracy for e in rec.history] == [0.9] * 4
    assert rec.history[-1].prediction is not None
    run = rec.end()
    assert run is not None
    with RunStore.open(url) as store:
        study = store.get_study(history_id(run.run_id))
    assert study.results is not None and study.results["status"] == "stopped early"
    assert study.results["stop_rule"] == "curve"
    assert study.results["stop_reason"] == decisions[3].reason
    assert len(study.results["epochs"]) == 4


def test_the_recorder_needs_the_accuracy_unless_only_a_budget_is_asked() -> None:
    ctx = LeverContext(meters=lambda: [_meter()], store=False)
    rec = EpochEnergyRecorder("r", context=ctx, stop=[LearningCurve()])
    rec.begin(5)
    rec.epoch_begin(1)
    result = rec.epoch_end()
    assert result is not None
    with pytest.raises(ConfigError, match="need the validation accuracy"):
        rec.check_stop(result, planned_epochs=5, val_accuracy=None)
    rec.end()
    budget = EpochEnergyRecorder("b", context=ctx, stop=[EnergyBudget(1e-9)])
    budget.begin(5)
    budget.epoch_begin(1)
    result = budget.epoch_end()
    assert result is not None
    decision = budget.check_stop(result, planned_epochs=5, val_accuracy=None)
    assert decision is not None and decision.rule == "budget"
    budget.end()
