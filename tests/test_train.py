"""The energy-aware training loop, its stopping rules, the prediction and transfer learning.

Real training on scikit-learn's digits. Where a test needs exact energies it uses a
meter that counts training batches (1 J each, set by a callback), so figures do not
depend on how busy the machine is; elsewhere a replayed constant-power trace.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make an epoch 100x slower: one thread keeps the suite fast everywhere.
torch.set_num_threads(1)

from wattwise._errors import ConfigError, DataFileError  # noqa: E402
from wattwise.meters._base import (  # noqa: E402
    Component,
    ComponentKind,
    Meter,
    Method,
    Probe,
    Reading,
    Source,
)
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.train import (  # noqa: E402
    Callback,
    EnergyBudget,
    EpochRecord,
    Plateau,
    StopContext,
    TargetAccuracy,
    TensorBoardCallback,
    TrainState,
    extend_head,
    fit,
    freeze,
    load_checkpoint,
    model_from_checkpoint,
    parse_stop,
    predict_total,
    save_checkpoint,
    unfreeze,
)
from wattwise.workloads import DataSplit, build_model, load_dataset  # noqa: E402

EST = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)


class BatchMeter(Meter):
    """A meter whose energy is a counter that a callback advances: 1 J per batch."""

    name = "batches"

    def __init__(self) -> None:
        self.joules = 0.0
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, joules: float) -> None:
        with self._lock:
            self.joules += joules

    def probe(self) -> Probe:
        return Probe(self.name, True, "test counter", (EST.name,))

    def start(self, now_s: float) -> list[Component]:
        self._last = self.joules
        return [EST]

    def read(self, now_s: float) -> list[Reading]:
        with self._lock:
            delta, self._last = self.joules - self._last, self.joules
        return [Reading(EST.name, delta)]


class CountBatches(Callback):
    def __init__(self, meter: BatchMeter, *, warmup_j: float = 0.0) -> None:
        self.meter = meter
        self.warmup_j = warmup_j

    def on_batch_end(self, state: TrainState) -> None:
        extra = self.warmup_j if state.epoch == 1 and state.batch == 1 else 0.0
        self.meter.add(1.0 + extra)


def _replay(*meters: Meter) -> LeverContext:
    """These meters for each run, and no store."""
    return LeverContext(meters=lambda: list(meters), store=False)


def constant_meter(power_w: float = 10.0) -> ReplayMeter:
    return ReplayMeter([EST], [TraceInterval(EST.name, 0.0, 36000.0, power_w * 36000.0)])


@pytest.fixture(scope="module")
def digits() -> DataSplit:
    return load_dataset("digits")


def cnn(data: DataSplit) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("cnn", input_shape=data.input_shape, num_classes=data.num_classes)


def batches_per_epoch(data: DataSplit, batch_size: int = 64) -> int:
    return math.ceil(len(data.train) / batch_size)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- prediction
def test_prediction_leaves_out_the_warm_up_epoch_and_beats_epochs_times_mean() -> None:
    energies = [30.0, 10.0, 10.5, 9.5]
    p = predict_total(energies, 20, overhead_j=2.0, source="measured (x)")
    assert p.warmup_left_out and p.basis_epochs == (2, 3, 4)
    assert p.epoch_mean_j == pytest.approx(10.0)
    assert p.total_j == pytest.approx(2.0 + 60.0 + 16 * 10.0)
    # What epochs x mean of the measured epochs would say: far too high.
    naive = 20 * sum(energies) / len(energies)
    assert naive > 1.3 * p.total_j
    assert "epoch 1 left out as warm-up" in p.describe() and "measured (x)" in p.describe()


def test_prediction_keeps_epoch_1_when_it_is_not_a_warm_up() -> None:
    p = predict_total([10.2, 10.0, 9.8], 10)
    assert not p.warmup_left_out and p.basis_epochs == (1, 2, 3)
    assert p.total_j == pytest.approx(100.0)
    # A warm-up only adds cost: a cheaper epoch 1 is noise, and is averaged in.
    cheap = predict_total([8.0, 12.0], 10)
    assert not cheap.warmup_left_out and cheap.epoch_mean_j == pytest.approx(10.0)
    # With one steady epoch the bar is 2 x 10 % x sqrt(2) = 28 % above it...
    assert not predict_total([12.5, 10.0], 10).warmup_left_out
    assert predict_total([13.0, 10.0], 10).warmup_left_out
    # ...and lower once steady epochs show a small spread.
    assert predict_total([11.5, 10.0, 10.1, 9.9, 10.0, 10.05, 9.95], 20).warmup_left_out


def test_prediction_uncertainty_is_never_zero_and_shrinks_with_evidence() -> None:
    early = predict_total([30.0, 10.0], 40)
    assert early.spread_assumed
    # Prior 10 % of 10 J per epoch; 38 epochs left from one steady epoch.
    assert early.sigma_j == pytest.approx(1.0 * math.sqrt(38 + 38**2 / 1))
    late = predict_total([30.0] + [10.0] * 20, 40)
    assert not late.spread_assumed
    assert late.sigma_j < early.sigma_j / 3
    done = predict_total([30.0, 10.0, 10.0], 3)
    assert done.sigma_j == 0.0 and done.total_j == pytest.approx(50.0)


def test_prediction_needs_measured_epochs_within_the_plan() -> None:
    with pytest.raises(ConfigError):
        predict_total([], 10)
    with pytest.raises(ConfigError):
        predict_total([1.0, 1.0, 1.0], 2)


# --------------------------------------------------------------------------- rules
def _history(accs: Sequence[float], energy_j: float = 10.0) -> list[EpochRecord]:
    return [
        EpochRecord(i + 1, energy_j, 0.0, 1.0, energy_j, 0.0, 1.0, 1.0 - a, a, "estimated (t)")
        for i, a in enumerate(accs)
    ]


def _ctx(history: list[EpochRecord], planned: int = 40, spent: float | None = None) -> StopContext:
    energies = [e.energy_j for e in history]
    used = sum(energies) if spent is None else spent
    return StopContext(history, planned, used, predict_total(energies, planned))


def test_target_fires_at_the_target_only() -> None:
    rule = TargetAccuracy(0.9)
    assert rule.check(_ctx(_history([0.5, 0.89]))) is None
    reason = rule.check(_ctx(_history([0.5, 0.9])))
    assert reason is not None and reason.startswith("target:")


def test_plateau_counts_epochs_since_a_real_improvement() -> None:
    rule = Plateau(patience=3, min_delta=0.01)
    assert rule.check(_ctx(_history([0.5, 0.8, 0.805, 0.809]))) is None
    reason = rule.check(_ctx(_history([0.5, 0.8, 0.805, 0.809, 0.8])))
    assert reason is not None and "best 0.8000 at epoch 2" in reason
    # A real improvement resets the count.
    assert rule.check(_ctx(_history([0.5, 0.8, 0.805, 0.82, 0.8]))) is None
    loss_rule = Plateau(patience=1, metric="val_loss")
    assert loss_rule.check(_ctx(_history([0.5, 0.6]))) is None  # loss fell
    assert loss_rule.check(_ctx(_history([0.6, 0.5]))) is not None  # loss rose


def test_budget_stops_while_the_next_epoch_still_fits() -> None:
    rule = EnergyBudget(100.0)
    # 3 x 23 J spent, the next predicted at 23 J (+2 sigma): 69 + 23 + reserve <= 100.
    assert rule.check(_ctx(_history([0.1] * 3, 23.0))) is None
    reason = rule.check(_ctx(_history([0.1] * 4, 23.0)))
    assert reason is not None and "could exceed the budget of 100 J" in reason
    over = rule.check(_ctx(_history([0.1], 23.0), spent=120.0))
    assert over is not None and "already exceeds" in over


def test_budgets_in_kwh_and_gco2e_convert_to_joules() -> None:
    assert EnergyBudget.from_kwh(0.001).budget_j == pytest.approx(3600.0)
    carbon = EnergyBudget.from_emissions(2.0, intensity_g_per_kwh=400.0)
    assert carbon.budget_j == pytest.approx(2.0 / 400.0 * 3.6e6)
    assert "2 gCO2e at 400 gCO2e/kWh" in carbon.label


@pytest.mark.parametrize(
    ("spec", "kind", "value"),
    [
        ("target:0.95", TargetAccuracy, 0.95),
        ("target:97%", TargetAccuracy, 0.97),
        ("plateau", Plateau, 5),
        ("plateau:3", Plateau, 3),
        ("plateau:4:0.01", Plateau, 4),
        ("budget:2kJ", EnergyBudget, 2000.0),
        ("budget:500J", EnergyBudget, 500.0),
        ("budget:0.5Wh", EnergyBudget, 1800.0),
        ("budget:0.01kWh", EnergyBudget, 36000.0),
        ("budget:3gCO2e@300", EnergyBudget, 36000.0),
    ],
)
def test_parse_stop(spec: str, kind: type, value: float) -> None:
    rule = parse_stop(spec)
    assert isinstance(rule, kind)
    got = {
        TargetAccuracy: lambda r: r.target,
        Plateau: lambda r: r.patience,
        EnergyBudget: lambda r: r.budget_j,
    }[kind](rule)
    assert got == pytest.approx(value)


def test_parse_stop_takes_the_intensity_for_gco2e_budgets() -> None:
    rule = parse_stop("budget:1g", intensity_g_per_kwh=100.0)
    assert isinstance(rule, EnergyBudget) and rule.budget_j == pytest.approx(36000.0)
    with pytest.raises(ConfigError, match="grid intensity"):
        parse_stop("budget:1gCO2e")


@pytest.mark.parametrize(
    "spec", ["target", "target:1.5", "plateau:x", "plateau:0", "budget:2", "budget:-1kJ", "halt:3"]
)
def test_parse_stop_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_stop(spec)


# --------------------------------------------------------------------------- the loop
def test_fit_measures_each_epoch_with_its_train_and_eval_parts(digits: DataSplit) -> None:
    meter = BatchMeter()
    r = fit(
        cnn(digits),
        digits,
        epochs=3,
        callbacks=[CountBatches(meter)],
        context=_replay(meter),
        device="cpu",
    )
    n = batches_per_epoch(digits)
    assert [e.epoch for e in r.epochs] == [1, 2, 3]
    for e in r.epochs:
        assert e.energy_j == pytest.approx(n)
        assert e.train_energy_j == pytest.approx(n) and e.eval_energy_j == 0.0
        assert e.source == "estimated (test-model)"
        assert e.uncertainty_j == pytest.approx(0.1 * n)
    assert r.total_energy_j == pytest.approx(3 * n)
    assert r.stop is None and r.prediction is None and r.energy_saved_j == 0.0
    assert r.stop_reason == "completed: all 3 planned epochs ran"
    assert r.run is not None
    paths = {w.path for w in r.run.windows}
    assert {"epoch-1", "epoch-1/train", "epoch-1/eval", "epoch-3/eval"} <= paths
    # It learns: the validation loss falls and accuracy is well above chance (10 %).
    assert r.epochs[-1].val_loss < r.epochs[0].val_loss
    assert r.final_val_accuracy is not None and r.final_val_accuracy > 0.6


def test_epoch_energy_follows_the_meter_and_power_is_energy_over_time(digits: DataSplit) -> None:
    r = fit(cnn(digits), digits, epochs=2, context=_replay(constant_meter(10.0)))
    for e in r.epochs:
        assert e.energy_j == pytest.approx(10.0 * e.duration_s, rel=1e-6)
        assert e.mean_power_w == pytest.approx(10.0, rel=1e-6)
        assert e.train_energy_j + e.eval_energy_j <= e.energy_j + 1e-9


def test_same_seed_same_run(digits: DataSplit) -> None:
    def losses(seed: int) -> list[float]:
        torch.manual_seed(123)  # fit reseeds: the model is built first with another seed
        model = build_model("mlp:width=32", input_shape=(1, 8, 8), num_classes=10)
        torch.manual_seed(seed)
        model = build_model("mlp:width=32", input_shape=(1, 8, 8), num_classes=10)
        r = fit(model, digits, epochs=2, seed=seed, context=_replay(constant_meter()))
        return [e.val_loss for e in r.epochs]

    assert losses(7) == losses(7)
    assert losses(7) != losses(8)


def test_target_stop_reports_the_saving_as_a_prediction(digits: DataSplit) -> None:
    meter = BatchMeter()
    r = fit(
        cnn(digits),
        digits,
        epochs=30,
        stop=[TargetAccuracy(0.6)],
        callbacks=[CountBatches(meter, warmup_j=50.0)],
        context=_replay(meter),
    )
    n = batches_per_epoch(digits)
    assert r.stop is not None and r.stop.rule == "target"
    ran = len(r.epochs)
    assert 1 < ran < 30 and r.final_val_accuracy is not None and r.final_val_accuracy >= 0.6
    p = r.prediction
    assert p is not None and p.warmup_left_out
    # The warm-up epoch is measured, not extrapolated: the rest are n J each.
    assert p.total_j == pytest.approx(r.total_energy_j + (30 - ran) * n)
    assert r.energy_saved_j == pytest.approx((30 - ran) * n)
    d = r.to_dict()
    assert d["stop_rule"] == "target" and d["energy_saved_j"] == pytest.approx(r.energy_saved_j)
    assert "predict" in d["predicted_full_energy_source"]
    assert d["energy_saved_source"].startswith("prediction")
    assert d["energy_source"] == "estimated (test-model)"


def test_budget_stops_before_it_is_exceeded(digits: DataSplit) -> None:
    meter = BatchMeter()
    n = batches_per_epoch(digits)
    budget = 4.5 * n
    r = fit(
        cnn(digits),
        digits,
        epochs=20,
        stop=[EnergyBudget(budget)],
        callbacks=[CountBatches(meter)],
        context=_replay(meter),
    )
    assert r.stop is not None and r.stop.rule == "budget"
    assert r.total_energy_j <= budget
    # It used the budget well: one more epoch would not have fitted.
    assert r.total_energy_j + n > budget * 0.9
    assert len(r.epochs) in (3, 4)


def test_a_callback_can_stop_the_run(digits: DataSplit) -> None:
    class StopAt2(Callback):
        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            if record.epoch == 2:
                state.request_stop("enough", rule="user")

    r = fit(cnn(digits), digits, epochs=5, callbacks=[StopAt2()], context=_replay(constant_meter()))
    assert r.stop is not None and (r.stop.rule, r.stop.reason, r.stop.epoch) == (
        "user",
        "enough",
        2,
    )


def test_fit_inside_a_running_tracker_is_one_window_of_it(digits: DataSplit) -> None:
    tracker = Tracker("outer", meters=[constant_meter(5.0)], store=False)
    with tracker:
        r = fit(cnn(digits), digits, epochs=2, tracker=tracker, name="fit-a")
    assert r.run is None and r.run_id == tracker.run_id
    assert tracker.result is not None
    paths = [w.path for w in tracker.result.windows]
    assert "fit-a/epoch-2/eval" in paths and "fit-a" in paths
    fit_window = next(w for w in tracker.result.windows if w.path == "fit-a")
    assert r.total_energy_j == pytest.approx(fit_window.energy_j)
    assert r.total_energy_j >= sum(e.energy_j for e in r.epochs) - 1e-9


def test_fit_makes_its_run_from_the_context(digits: DataSplit, tmp_path: Path) -> None:
    """Meters, store and scope of the run fit owns all come from the context."""
    from wattwise.store import RunStore
    from wattwise.tracking import Scope

    url = str(tmp_path / "runs.sqlite")
    ctx = LeverContext(meters=lambda: [constant_meter(10.0)], store=url, scope=Scope.PROCESS)
    r = fit(cnn(digits), digits, epochs=1, context=ctx, name="ctx-run")
    assert r.run is not None and r.run.scope is Scope.PROCESS
    with RunStore.open(url) as store:
        run = store.get_run(r.run_id)
    assert run.name == "ctx-run" and run.energy_j == pytest.approx(r.total_energy_j)


def test_fit_starts_and_stops_a_tracker_that_is_not_running(digits: DataSplit) -> None:
    tracker = Tracker("given", meters=[constant_meter(5.0)], store=False)
    r = fit(cnn(digits), digits, epochs=1, tracker=tracker)
    assert not tracker.running and r.run is tracker.result and r.run_id == tracker.run_id
    assert "epoch-1" in {w.path for w in r.run.windows}


def test_bad_fit_arguments(digits: DataSplit) -> None:
    model = cnn(digits)
    with pytest.raises(ConfigError, match="epochs"):
        fit(model, digits, epochs=0, context=LeverContext(store=False))
    with pytest.raises(ConfigError, match="matches no trainable"):
        fit(model, digits, lr_groups={"backbone.*": 1e-4}, context=_replay(constant_meter()))
    with pytest.raises(ConfigError, match="optimizer"):
        fit(model, digits, optimizer="lion", context=_replay(constant_meter()))
    freeze(model, "*")
    with pytest.raises(ConfigError, match="nothing to train"):
        fit(model, digits, context=_replay(constant_meter()))


# --------------------------------------------------------------------------- transfer
def test_checkpoint_round_trip_and_class_extension_keeps_learned_rows(
    tmp_path: Path, digits: DataSplit
) -> None:
    sub = load_dataset("digits", classes=tuple(range(8)))
    model = cnn(sub)
    fit(model, sub, epochs=1, context=_replay(constant_meter()))
    path = save_checkpoint(
        tmp_path / "c" / "m.pt",
        model,
        model_spec="cnn",
        class_names=sub.class_names,
        input_shape=sub.input_shape,
        dataset=sub.name,
        metrics={"val_accuracy": 0.5},
    )
    ckpt = load_checkpoint(path)
    assert (
        ckpt.class_names == tuple(str(i) for i in range(8)) and ckpt.metrics["val_accuracy"] == 0.5
    )
    same = model_from_checkpoint(ckpt, class_names=sub.class_names, input_shape=(1, 8, 8))
    x = sub.val.tensors[0][:4]
    model.eval()
    assert torch.equal(same.eval()(x), model(x))

    with pytest.raises(ConfigError, match=r"class mismatch.*--extend-classes"):
        model_from_checkpoint(ckpt, class_names=digits.class_names)
    with pytest.raises(ConfigError, match="inputs of shape"):
        model_from_checkpoint(ckpt, input_shape=(3, 32, 32))
    wide = model_from_checkpoint(ckpt, class_names=digits.class_names, extend=True)
    old_w, new_w = model.head.weight, wide.head.weight  # type: ignore[union-attr]
    assert new_w.shape == (10, old_w.shape[1])
    assert torch.equal(new_w[:8], old_w) and not torch.equal(new_w[8], new_w[0])
    # The 8 known classes still score as before.
    assert torch.equal(wide.eval()(x)[:, :8], model(x))


def test_extend_head_maps_rows_by_class_name() -> None:
    model = build_model("mlp:depth=1,width=8", input_shape=(1, 2, 2), num_classes=2)
    before = model.head.weight.detach().clone()  # type: ignore[union-attr]
    added = extend_head(model, ("a", "b"), ("b", "c", "a"))
    assert added == ["c"]
    after = model.head.weight  # type: ignore[union-attr]
    assert torch.equal(after[0], before[1]) and torch.equal(after[2], before[0])
    with pytest.raises(ConfigError, match="not in the new class list"):
        extend_head(model, ("b", "c", "a"), ("b", "c"))


def test_missing_or_foreign_checkpoints_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataFileError):
        load_checkpoint(junk)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataFileError, match="not a wattwise checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_frozen_parameters_do_not_move_and_the_rest_fine_tunes_at_its_own_rate(
    digits: DataSplit,
) -> None:
    model = cnn(digits)
    frozen = freeze(model, "features.*")
    assert frozen and all(n.startswith("features.") for n in frozen)
    unfreeze(model, "features.3.*")  # the second convolution trains again
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(
        model,
        digits,
        epochs=1,
        lr=1e-3,
        lr_groups={"features.*": 1e-9},
        context=_replay(constant_meter()),
    )
    after = {n: p.detach() for n, p in model.named_parameters()}
    assert torch.equal(after["features.0.weight"], before["features.0.weight"])
    # A learning rate of 1e-9 barely moves a parameter; 1e-3 moves the head.
    tiny = (after["features.3.weight"] - before["features.3.weight"]).abs().max()
    assert 0 < float(tiny) < 1e-6
    assert float((after["head.weight"] - before["head.weight"]).abs().max()) > 1e-4
    with pytest.raises(ConfigError, match="matches no parameter"):
        freeze(model, "backbone.*")


# --------------------------------------------------------------------------- tensorboard
def test_tensorboard_gets_energy_power_and_validation_scalars_and_hparams(
    tmp_path: Path, digits: DataSplit
) -> None:
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    r = fit(
        cnn(digits),
        digits,
        epochs=2,
        callbacks=[TensorBoardCallback(tmp_path / "tb")],
        context=_replay(constant_meter(10.0)),
    )
    acc = ea.EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"energy/epoch_j", "energy/total_j", "power/mean_w", "accuracy/val", "loss/val"} <= tags
    epoch_j = [s.value for s in acc.Scalars("energy/epoch_j")]
    assert epoch_j == pytest.approx([e.energy_j for e in r.epochs], rel=1e-5)
    total = [s.value for s in acc.Scalars("energy/total_j")]
    assert total[-1] == pytest.approx(sum(epoch_j), rel=1e-5)
    assert [s.value for s in acc.Scalars("accuracy/val")] == pytest.approx(
        [e.val_accuracy for e in r.epochs]
    )
    assert [s.value for s in acc.Scalars("power/mean_w")] == pytest.approx([10.0, 10.0], rel=1e-4)
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugins
