"""Comparative studies: statistics, costs, the profiler split, and real (tiny) studies.

Studies train on scikit-learn's digits, one thread, a few epochs. Energy comes from a
replayed constant 20 W trace, so a run's energy is 20 W times its measured duration: the
figures are real timings, but no other process's load can change them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make an epoch 100x slower (see tests/test_train.py).
torch.set_num_threads(1)

from torch import nn  # noqa: E402

import wattwise.studies as studies  # noqa: E402
from wattwise._errors import ConfigError  # noqa: E402
from wattwise.meters import GpuMonitor, GpuSample, ReplayGpuProbe  # noqa: E402
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext, Protocol  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.studies import (  # noqa: E402
    GpuUsage,
    RepeatedRuns,
    StudyMethod,
    Trial,
    assess_gpu,
    auto_variants,
    compare,
    count_costs,
    layer_type,
    min_p_value,
    pareto_mask,
    profile_steps,
    study_architectures,
    study_environments,
    study_layers,
    summarize,
    summarize_gpu,
)
from wattwise.studies._method import cheapest_within, versus  # noqa: E402
from wattwise.studies._precision import Autocast  # noqa: E402
from wattwise.tracking import Scope  # noqa: E402
from wattwise.workloads import DataSplit, build_model, load_dataset  # noqa: E402

POWER_W = 20.0
CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)


def replay_meters() -> list[ReplayMeter]:
    return [ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])]


@pytest.fixture(scope="module")
def digits() -> DataSplit:
    return load_dataset("digits")


FAST = StudyMethod.of(repeats=2, warmup_batches=2)
#: Replayed meters, nothing stored.
REPLAY = LeverContext(meters=replay_meters, store=False)


# -- statistics ---------------------------------------------------------------------------


def test_summary_median_quartiles_and_range() -> None:
    s = summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    assert (s.median, s.q1, s.q3, s.min, s.max, s.n) == (3.0, 2.0, 4.0, 1.0, 10.0, 5)
    assert s.iqr == 2.0
    assert s.to_dict()["values"] == [4.0, 1.0, 3.0, 2.0, 10.0]  # order kept
    with pytest.raises(ConfigError):
        summarize([])


def test_mann_whitney_decides_only_when_the_repeats_allow_it() -> None:
    low, high = [1.0, 1.1, 1.2, 1.3, 1.4], [2.0, 2.1, 2.2, 2.3, 2.4]
    c = compare(low, high)
    assert c.significant is True and c.p_value == pytest.approx(2 / math.comb(10, 5))
    # 3 vs 3 cannot go below p = 0.1: a huge difference is still undecidable at 0.05.
    c3 = compare(low[:3], [100.0, 101.0, 102.0])
    assert c3.p_value == pytest.approx(0.1) and c3.significant is None
    assert "smallest possible p is 0.1" in c3.note
    assert compare(low[:3], [100.0, 101.0, 102.0], alpha=0.2).significant is True
    assert min_p_value("mannwhitney", 4, 4) == pytest.approx(2 / 70)
    assert min_p_value("welch", 3, 3) is None


def test_overlapping_samples_are_not_significant_and_degenerate_cases_say_why() -> None:
    c = compare([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 4.5, 5.5])
    assert c.significant is False and c.p_value is not None and c.p_value > 0.3
    same = compare([0.9, 0.9, 0.9], [0.9, 0.9, 0.9])
    assert same.p_value == 1.0 and same.significant is False
    constant = compare([0.9, 0.9, 0.9], [0.8, 0.8, 0.8], test="welch")
    assert constant.p_value is None and "no spread" in constant.note
    assert compare([1.0], [2.0, 3.0]).significant is None
    welch = compare([1.0, 1.1, 1.2], [2.0, 2.1, 2.3], test="welch")
    assert welch.significant is True and welch.test == "welch"
    with pytest.raises(ConfigError, match="unknown significance test"):
        compare([1.0, 2.0], [3.0, 4.0], test="ttest")


def test_pareto_front_keeps_only_undominated_points() -> None:
    energies = [1.0, 2.0, 3.0, 2.5, 1.0]
    accuracies = [0.80, 0.90, 0.95, 0.90, 0.70]
    # (2.5, .90) is dominated by (2.0, .90); (1.0, .70) by (1.0, .80).
    assert pareto_mask(energies, accuracies) == [True, True, True, False, False]
    assert pareto_mask([1.0, 1.0], [0.5, 0.5]) == [True, True]  # equal points both stay


def _runs(label: str, energies: list[float], accs: list[float]) -> RepeatedRuns:
    trials = tuple(
        Trial(label, i + 1, i, f"{label}{i}", e, 0.0, e / POWER_W, a, 1, "estimated (x)", "done")
        for i, (e, a) in enumerate(zip(energies, accs, strict=True))
    )
    return RepeatedRuns(label, trials)


def test_headline_is_the_cheapest_within_the_tolerance_of_the_reference() -> None:
    a = _runs("A", [10.0, 11.0, 9.0], [0.95, 0.95, 0.95])
    b = _runs("B", [3.0, 3.1, 2.9], [0.945, 0.945, 0.945])
    c = _runs("C", [1.0, 1.0, 1.0], [0.90, 0.90, 0.90])
    method = StudyMethod.of(repeats=3, test="welch")
    s = cheapest_within(a, [a, b, c], 1.0, method)
    assert (s.reference, s.choice) == ("A", "B")
    assert s.saved_frac == pytest.approx(0.7) and s.accuracy_change_pp == pytest.approx(-0.5)
    assert s.energy_test is not None and s.energy_test.significant is True
    assert cheapest_within(a, [a, b, c], 10.0, method).choice == "C"
    nothing = cheapest_within(a, [a, b, c], 0.0, method)
    assert nothing.choice == "A" and nothing.saved_j == 0 and nothing.energy_test is None
    assert "nothing to save" in nothing.describe()
    v = versus(a, c, method)
    assert v.energy_change_frac == pytest.approx(-0.9)
    assert v.accuracy_change_pp == pytest.approx(-5.0)
    with pytest.raises(ConfigError):
        cheapest_within(a, [a], -1.0, method)


@pytest.mark.parametrize(
    "bad",
    [
        {"repeats": 0},
        {"test": "ttest"},
        {"alpha": 1.5},
        {"cooldown_s": -1},
        {"cooldown_s": float("nan")},
        {"cooldown_s": float("inf")},
    ],
)
def test_method_rejects_bad_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        StudyMethod.of(**bad)


def test_method_is_a_protocol_and_stores_the_same_json() -> None:
    method = StudyMethod.of(repeats=3, warmup_batches=4, cooldown_s=0.5, seed=7)
    assert method.protocol == Protocol(repeats=3, warmup=4, cooldown_s=0.5, seed=7)
    assert method.to_dict(LeverContext(scope="process").scope) == {
        "repeats": 3,
        "warmup_batches": 4,
        "cooldown_s": 0.5,
        "test": "mannwhitney",
        "alpha": 0.05,
        "scope": "process",
        "seed": 7,
        "order": "round-robin over configurations, per repeat",
    }


def test_trials_cool_down_between_runs_in_round_robin_order(digits: DataSplit) -> None:
    from wattwise.protocol import study_session
    from wattwise.studies._method import Budget, TrainConfig, run_trials

    method = StudyMethod(Protocol(repeats=2, warmup=0, cooldown_s=2.5))
    slept: list[float] = []
    configs = [TrainConfig("a", "mlp:depth=0", 64), TrainConfig("b", "mlp:depth=0", 128)]
    with study_session(REPLAY, kind="k", name="n", params={}) as session:
        runs = run_trials(session, method, configs, digits, Budget(1), sleep=slept.append)
    assert slept == [2.5, 2.5, 2.5]  # between the four runs, not before the first
    assert [t.seed for t in runs["a"].trials] == [0, 1] == [t.seed for t in runs["b"].trials]


# -- costs and layer types ----------------------------------------------------------------


def test_flops_and_params_per_module_match_the_arithmetic() -> None:
    model = build_model("cnn", input_shape=(1, 8, 8), num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    cost = count_costs(model, (1, 8, 8))
    # Conv 1->16, 3x3, padding 1 on 8x8: 8*8*16*9 multiply-adds = 9216, 2 FLOPs each.
    first = cost.of("features.0")
    assert first is not None and first.type == "conv"
    assert first.flops == 2 * 8 * 8 * 16 * 9 and first.params == 16 * 9 + 16
    # No gradient is needed for the input: its backward only computes the weight gradient.
    assert first.train_flops == 2 * first.flops
    # After two 2x2 pools, conv 16->32 runs on 4x4; the head is 128 -> 10.
    second = cost.of("features.3")
    assert second is not None and second.flops == 2 * 4 * 4 * 32 * 9 * 16
    head = cost.of("head")
    assert head is not None and head.flops == 2 * 128 * 10 and head.type == "linear"
    assert cost.flops == first.flops + second.flops + head.flops
    assert cost.params == sum(m.params for m in cost.modules) == 6090
    # The model itself is untouched: same weights, no gradients, still in eval mode.
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_layer_types() -> None:
    class SelfAttentionBlock(nn.Module):
        pass

    expected = {
        "conv": [nn.Conv1d(1, 1, 1), nn.Conv2d(1, 1, 1), nn.ConvTranspose2d(1, 1, 1)],
        "linear": [nn.Linear(1, 1)],
        "norm": [nn.BatchNorm2d(1), nn.LayerNorm(2), nn.GroupNorm(1, 2), nn.InstanceNorm2d(1)],
        "activation": [nn.ReLU(), nn.GELU(), nn.SiLU(), nn.Hardswish(), nn.Softmax(dim=1)],
        "pooling": [nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.AvgPool1d(2)],
        "attention": [nn.MultiheadAttention(4, 2), SelfAttentionBlock()],
        "other": [nn.Dropout(), nn.Flatten(), nn.Sequential(), nn.Embedding(2, 2)],
    }
    for kind, modules in expected.items():
        for m in modules:
            assert layer_type(m) == kind, type(m).__name__
    assert set(expected) == set(studies.LAYER_TYPES)


# -- the profiler split -------------------------------------------------------------------


class _Wide(nn.Module):
    """A heavy linear layer, an in-place ReLU (full backward hooks would fail on it), a
    cheap head, and an operation of the model's own."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Linear(2048, 2048)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Linear(2048, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.act(self.big(x)) * 0.5)
        return out


def test_profile_splits_forward_and_backward_time_by_module() -> None:
    torch.manual_seed(0)
    model = _Wide()
    x, y = torch.randn(256, 2048), torch.randint(0, 10, (256,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    profile_steps(model, x, y, opt, steps=1)  # warm-up: first-step allocations
    prof = profile_steps(model, x, y, opt, steps=3)
    assert prof.steps == 3 and not prof.device_time
    for name in ("big", "act", "head"):
        assert prof.forward_s[name] > 0 and prof.backward_s[name] > 0, name
    # The 2048x2048 product (1 GFLOP forward, 2 backward) dwarfs the ReLU over its output.
    assert prof.forward_s["big"] > 3 * prof.forward_s["act"]
    assert prof.backward_s["big"] > 3 * prof.backward_s["act"]
    assert prof.module_s("big") > prof.module_s("head")
    assert prof.forward_s[""] > 0  # the model's own multiplication
    assert {"optimizer", "loss and other"} <= set(prof.outside_s)
    traced = sum(prof.module_s(n) for n in prof.forward_s) + sum(prof.outside_s.values())
    assert traced + prof.untraced_s == pytest.approx(prof.step_s, rel=1e-6)
    # The hooks are gone afterwards.
    assert not model.big._forward_pre_hooks and not model.big._forward_hooks


# -- studies ------------------------------------------------------------------------------


def test_auto_variants_shrink_and_drop_blocks() -> None:
    shape = (1, 8, 8)
    assert [s for s, _ in auto_variants("cnn", input_shape=shape, num_classes=10)] == [
        "cnn:depth=2,width=8",
        "cnn:depth=1,width=16",
    ]
    mlp = auto_variants("mlp:depth=1,width=64", input_shape=shape, num_classes=10)
    assert [s for s, _ in mlp] == ["mlp:depth=1,width=32", "mlp:depth=0,width=64"]
    assert "dense block dropped" in mlp[1][1]
    assert [s for s, _ in auto_variants("cnn:depth=1", input_shape=shape, num_classes=10)] == [
        "cnn:depth=1,width=8"  # a CNN keeps at least one conv block
    ]
    with pytest.raises(ConfigError, match="built-in"):
        auto_variants("resnet18", input_shape=(3, 32, 32), num_classes=10)


def test_architecture_study_trains_repeats_round_robin_and_stores_them(
    digits: DataSplit, tmp_path: Path
) -> None:
    url = str(tmp_path / "s.sqlite")
    told: list[tuple[int, int, str]] = []
    models = ["mlp:depth=0", "cnn:width=32"]
    study = study_architectures(
        models,
        digits,
        epochs=2,
        method=FAST,
        context=LeverContext(meters=replay_meters, store=url, progress=lambda *a: told.append(a)),
    )
    assert [m.model for m in study.models] == models
    assert [t[:2] for t in told] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert [t[2] for t in told][:3] == ["warm-up", "mlp:depth=0 #1", "cnn:width=32 #1"]
    for m in study.models:
        cost = count_costs(
            build_model(m.model, input_shape=digits.input_shape, num_classes=10),
            digits.input_shape,
        )
        assert (m.params, m.flops) == (cost.params, cost.flops)
        assert [t.seed for t in m.runs.trials] == [0, 1]
        for t in m.runs.trials:
            assert t.epochs == 2 and t.stop_reason.startswith("completed")
            assert t.energy_j == pytest.approx(POWER_W * t.duration_s, rel=1e-3)
            assert t.energy_source == "estimated (test-model)"
    small, big = study.models
    assert big.flops > 50 * small.flops
    # Energy is 20 W x real time: the 70x-FLOPs CNN takes longer than the linear model.
    assert big.runs.energy_j.median > small.runs.energy_j.median
    # The reference, front and headline, recomputed from the medians.
    acc = {m.model: m.runs.val_accuracy.median for m in study.models}
    energy = {m.model: m.runs.energy_j.median for m in study.models}
    reference = max(models, key=lambda k: acc[k])
    assert study.reference == reference
    assert [m.pareto for m in study.models] == pareto_mask(
        [energy[k] for k in models], [acc[k] for k in models]
    )
    ok = [k for k in models if acc[k] >= acc[reference] - 0.01]
    assert study.saving.choice == min(ok, key=lambda k: energy[k])
    assert [m.versus is None for m in study.models] == [k == reference for k in models]

    d = study.to_dict()
    assert d["kind"] == "architectures" and d["stored"] is True
    for row in d["models"]:
        assert {"model", "params", "flops", "energy_j", "val_accuracy", "pareto"} <= set(row)
    with RunStore.open(url) as store:
        stored = store.get_study(study.study_id)
        assert stored.kind == "architectures" and stored.finished_at is not None
        # Round-robin: repeat 1 of every model before repeat 2 of any.
        assert [r.label for r in stored.runs] == [
            "mlp:depth=0 #1", "cnn:width=32 #1", "mlp:depth=0 #2", "cnn:width=32 #2"
        ]  # fmt: skip
        assert stored.results == json.loads(json.dumps(d))
        run = store.get_run(stored.runs[0].run_id)
        assert run.energy_j == pytest.approx(stored.runs[0].attributes["energy_j"])


def test_architecture_study_refuses_bad_input_before_training(digits: DataSplit) -> None:
    with pytest.raises(ConfigError, match="at least two"):
        study_architectures(["mlp"], digits, context=REPLAY)
    with pytest.raises(ConfigError, match="twice"):
        study_architectures(["mlp", "mlp"], digits, context=REPLAY)
    with pytest.raises(ConfigError, match="unknown model"):
        study_architectures(["mlp", "nonsense"], digits, context=REPLAY)


def test_layer_study_measures_windows_and_attributes_by_time_share(
    digits: DataSplit, tmp_path: Path
) -> None:
    url = str(tmp_path / "s.sqlite")
    study = study_layers(
        "cnn",
        data=digits,
        window_s=0.3,
        profile_steps_per_repeat=3,
        method=FAST,
        context=LeverContext(meters=replay_meters, store=url),
    )
    assert study.steps_per_window >= 3 and study.energy_per_step_j.n == 2
    # A constant 20 W over each window: energy per step = 20 W x time per step.
    for e, t in zip(study.energy_per_step_j.values, study.step_s.values, strict=True):
        assert e == pytest.approx(POWER_W * t, rel=1e-3)
    rows = {r.name: r for r in study.layers}
    assert {"features.0", "features.3", "head", "(optimizer)", "(untraced)"} <= set(rows)
    assert "features" not in rows  # a container without operations of its own
    assert rows["features.0"].type == "conv" and rows["features.0"].flops == 18432
    assert sum(r.energy_share for r in study.layers) == pytest.approx(1.0)
    for r in study.layers:
        assert r.energy_share == r.time_share
        assert r.energy_per_step_j == pytest.approx(study.energy_per_step_j.median * r.energy_share)
    assert sum(study.by_type.values()) == pytest.approx(1.0)
    assert study.by_type["conv"] > 0 and study.variants == ()
    d = study.to_dict()
    assert {"name", "type", "flops", "params", "time_share", "energy_share"} <= set(d["layers"][0])
    assert d["layers"][0]["energy_method"] == "attributed"
    assert set(d["by_type"]) == {r.type for r in study.layers}
    with RunStore.open(url) as store:
        stored = store.get_study(study.study_id)
        assert stored.kind == "layers" and [r.label for r in stored.runs] == ["cnn #1", "cnn #2"]
        assert stored.results is not None and stored.results["by_type"] == d["by_type"]


def test_layer_study_on_random_inputs_of_any_shape() -> None:
    study = study_layers(
        "mlp:depth=1,width=32",
        input_shape=(3, 4, 4),
        num_classes=5,
        window_s=0.1,
        profile_steps_per_repeat=2,
        method=StudyMethod.of(repeats=1, warmup_batches=0),
        context=REPLAY.with_(scope=Scope.PROCESS),
    )
    assert study.input_shape == (3, 4, 4) and study.settings["inputs"] == "random"
    assert study.method["scope"] == "process"  # the context's scope, stored as before
    assert any(n.startswith("process scope") for n in study.notes)
    first = next(r for r in study.layers if r.type == "linear")
    assert first.flops == 2 * 48 * 32 and not study.stored
    with pytest.raises(ConfigError, match="dataset or an input shape"):
        study_layers("mlp", context=REPLAY)


def test_layer_study_variants_are_trained_and_compared_with_the_base(digits: DataSplit) -> None:
    study = study_layers(
        "cnn:depth=2,width=8",
        data=digits,
        window_s=0.1,
        profile_steps_per_repeat=2,
        variants=True,
        epochs=2,
        method=FAST,
        context=REPLAY,
    )
    labels = [v.model for v in study.variants]
    assert labels == ["cnn:depth=2,width=8", "cnn:depth=2,width=4", "cnn:depth=1,width=8"]
    base, *smaller = study.variants
    assert base.versus is None and base.change == "base"
    for v in smaller:
        assert v.versus is not None and v.versus.reference == "cnn:depth=2,width=8"
        assert v.params < base.params and v.flops < base.flops
        want = (v.runs.energy_j.median - base.runs.energy_j.median) / base.runs.energy_j.median
        assert v.versus.energy_change_frac == pytest.approx(want)
        assert len(v.runs.trials) == 2


def test_environment_study_runs_the_grid_against_the_first_setting(digits: DataSplit) -> None:
    threads_before = torch.get_num_threads()
    study = study_environments(
        "mlp:depth=1,width=32",
        digits,
        threads=[1],
        batch_sizes=[32, 256],
        precisions=["fp32", "bf16"],
        devices=["cpu"],
        epochs=1,
        method=FAST,
        context=REPLAY,
    )
    assert torch.get_num_threads() == threads_before
    assert [r.setting.label for r in study.environments] == [
        "threads=1 batch=32 fp32 cpu",
        "threads=1 batch=32 bf16 cpu",
        "threads=1 batch=256 fp32 cpu",
        "threads=1 batch=256 bf16 cpu",
    ]
    assert study.baseline == "threads=1 batch=32 fp32 cpu"
    assert study.environments[0].versus is None
    assert all(r.versus is not None for r in study.environments[1:])
    assert all(r.gpu is None and r.gpu_fit is None for r in study.environments)
    rec = study.recommendation
    assert rec.reference == study.baseline
    base_acc = study.environments[0].runs.val_accuracy.median
    ok = [r for r in study.environments if r.runs.val_accuracy.median >= base_acc - 0.01]
    assert rec.choice == min(ok, key=lambda r: r.runs.energy_j.median).setting.label
    d = study.to_dict()
    assert d["baseline"] == study.baseline and len(d["environments"]) == 4
    assert d["environments"][1]["precision"] == "bf16"


def test_environment_study_refuses_what_it_cannot_run(digits: DataSplit) -> None:
    kw: dict[str, Any] = {"context": REPLAY}
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            study_environments("mlp", digits, devices=["cpu", "cuda"], **kw)
    with pytest.raises(ConfigError, match="loss scaling"):
        study_environments("mlp", digits, precisions=["fp16"], **kw)
    with pytest.raises(ConfigError, match="twice"):
        study_environments("mlp", digits, batch_sizes=[32, 32], **kw)
    with pytest.raises(ConfigError, match="threads"):
        study_environments("mlp", digits, threads=[0], **kw)


def test_bf16_autocast_runs_the_layers_in_bf16_and_returns_float32() -> None:
    inner = nn.Linear(4, 3)
    seen: list[torch.dtype] = []
    inner.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = Autocast(inner, torch.bfloat16)(torch.randn(2, 4))
    assert seen == [torch.bfloat16] and out.dtype == torch.float32
    out.sum().backward()
    assert inner.weight.grad is not None and inner.weight.grad.dtype == torch.float32


# -- GPU fit ------------------------------------------------------------------------------


def _usage(util: float, power_w: float) -> GpuUsage:
    return GpuUsage("cuda:0", "H100", 10, util, util, power_w, 700.0, 0.1)


def test_gpu_is_oversized_only_when_it_idles_and_draws_little() -> None:
    assert assess_gpu(_usage(0.2, 150.0)).oversized
    assert "oversized" in assess_gpu(_usage(0.2, 150.0)).reason
    assert not assess_gpu(_usage(0.9, 150.0)).oversized  # busy
    assert not assess_gpu(_usage(0.3, 600.0)).oversized  # near its power limit
    assert assess_gpu(_usage(0.6, 150.0), busy_threshold_frac=0.7).oversized


def test_gpu_monitor_samples_a_replayed_gpu() -> None:
    trace = [GpuSample(u, p, 400.0, 0.25) for u, p in [(0.1, 80.0), (0.2, 90.0), (0.3, 100.0)]]
    with GpuMonitor(ReplayGpuProbe([*trace, None], gpu_name="A100"), interval_s=0.01) as mon:
        while len(mon.samples) < 3:
            pass
    assert mon.samples[:3] == trace and mon.gpu_name == "A100" and mon.error is None
    usage = summarize_gpu("cuda:0", mon.gpu_name, trace)
    assert usage is not None
    assert (usage.utilisation_frac, usage.power_w, usage.power_limit_w) == (0.2, 90.0, 400.0)
    assert assess_gpu(usage).oversized
    assert summarize_gpu("cuda:0", "x", []) is None
    with GpuMonitor(ReplayGpuProbe([])) as empty:
        pass
    assert empty.samples == [] and empty.error is not None and "empty" in empty.error


def test_environment_study_samples_the_gpu_of_cuda_settings_only(
    digits: DataSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU wiring without a GPU: CUDA is faked at the device check, training by a stub
    that only sleeps inside its tracker, and the GPU by a replayed probe (idle: 10 % busy at
    60 of 300 W). The real CUDA path has not run on a GPU here."""
    import time

    import wattwise.studies._environments as env_mod
    import wattwise.studies._method as method_mod
    from wattwise.train import EpochRecord, FitResult, resolve_device

    def device(spec: str) -> Any:
        return torch.device("cuda", 0) if spec.startswith("cuda") else resolve_device(spec)

    def fake_fit(model: nn.Module, data: DataSplit, *, tracker: Any, device: str, **_: Any) -> Any:
        with tracker:
            time.sleep(0.3)  # the monitor samples every 0.2 s
        run = tracker.result
        epoch = EpochRecord(1, run.energy_j, 0.0, run.duration_s, run.energy_j, 0.0, 1.0, 1.0,
                            0.9, "estimated (test-model)")  # fmt: skip
        return FitResult((epoch,), 1, None, run.energy_j, 0.0, "estimated (test-model)",
                         run.duration_s, None, 0.0, device, run.run_id, run)  # fmt: skip

    monkeypatch.setattr(env_mod, "resolve_device", device)
    monkeypatch.setattr(method_mod, "fit", fake_fit)
    idle = GpuSample(0.1, 60.0, 300.0, 0.05)
    probes: list[int] = []

    def probe(index: int) -> ReplayGpuProbe:
        probes.append(index)
        return ReplayGpuProbe([idle], gpu_name="big GPU")

    study = study_environments(
        "mlp:depth=0",
        digits,
        devices=["cpu", "cuda"],
        epochs=1,
        method=StudyMethod.of(repeats=2, warmup_batches=0),
        context=REPLAY,
        gpu_probe=probe,
    )
    cpu, gpu = study.environments
    assert probes == [0, 0]  # one monitor per CUDA run, none for the CPU runs
    assert cpu.gpu is None and cpu.gpu_fit is None
    assert gpu.setting.device == "cuda:0" and gpu.gpu is not None and gpu.gpu_fit is not None
    assert gpu.gpu.gpu_name == "big GPU" and gpu.gpu.samples >= 4  # both runs pooled
    assert gpu.gpu.utilisation_frac == pytest.approx(0.1) and gpu.gpu_fit.oversized
    assert any("oversized" in n and "cuda:0" in n for n in study.notes)
    assert study.to_dict()["environments"][1]["gpu_fit"]["oversized"] is True
