"""int8 quantization (torchao PT2E) against fp32 on a digits MLP and CNN trained here.

Energies come from a replayed constant-power trace: each variant's energy is exactly
power x its windows' time, so the per-inference figures can be checked by arithmetic.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("torchao")
torch.set_num_threads(1)  # tiny models; see tests/test_train.py

from torch import nn  # noqa: E402

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.infer import (  # noqa: E402
    QUANTIZE_PROTOCOL,
    applicable_variants,
    measure_quantization,
    prepare_variant,
    tensor_bytes,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.train import fit  # noqa: E402
from wattwise.workloads import DataSplit, build_model, load_dataset  # noqa: E402

CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)
POWER_W = 10.0


def tracker() -> Tracker:
    meter = ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])
    return Tracker("quantize", meters=[meter], store=False)


@pytest.fixture(scope="module")
def digits() -> DataSplit:
    return load_dataset("digits")


def _tensors(data: DataSplit) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs = torch.stack([data.val[i][0] for i in range(len(data.val))])  # type: ignore[arg-type]
    ys = torch.tensor([int(data.val[i][1]) for i in range(len(data.val))])  # type: ignore[arg-type]
    cal = torch.stack([data.train[i][0] for i in range(128)])
    return xs, ys, cal


@pytest.fixture(scope="module")
def trained(digits: DataSplit) -> dict[str, nn.Module]:
    out = {}
    for spec in ("mlp", "cnn"):
        torch.manual_seed(0)
        net = build_model(spec, input_shape=digits.input_shape, num_classes=10)
        meter = ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, 36000.0)])
        fit(net, digits, epochs=4, context=LeverContext(meters=lambda m=meter: [m], store=False))
        out[spec] = net.eval()
    return out


def test_tensor_bytes_counts_parameters_and_buffers_once() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    params = 4 * 3 + 3 + 3 + 3  # weight, bias, bn weight, bn bias
    buffers = 3 + 3  # running mean and var (float32); num_batches_tracked is int64
    assert tensor_bytes(net) == (params + buffers) * 4 + 8


def test_variants_fit_the_layers_a_model_has() -> None:
    assert applicable_variants(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))[0] == [
        "int8-dynamic",
        "int8-static",
    ]
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3))
    chosen, skipped = applicable_variants(conv_only)
    assert chosen == ["int8-static"] and "no Linear" in skipped["int8-dynamic"]
    chosen, skipped = applicable_variants(nn.Sequential(nn.ReLU()))
    assert chosen == [] and set(skipped) == {"int8-dynamic", "int8-static"}


@pytest.mark.parametrize("spec", ["mlp", "cnn"])
def test_int8_variants_are_smaller_and_keep_the_accuracy(
    spec: str, digits: DataSplit, trained: dict[str, nn.Module]
) -> None:
    xs, ys, cal = _tensors(digits)
    t = tracker()
    r = measure_quantization(
        trained[spec], val=(xs, ys), calibration=cal, batch_size=32,
        protocol=replace(QUANTIZE_PROTOCOL, repeats=2, min_time_s=0.05), tracker=t,
        model_name=spec, dataset="digits",
    )  # fmt: skip
    assert [v.variant for v in r.variants] == ["fp32", "int8-dynamic", "int8-static"]
    assert r.skipped == {}
    fp32 = r.variant("fp32")
    assert fp32.size_bytes == tensor_bytes(trained[spec])
    assert fp32.accuracy > 0.8  # trained: the comparison means something
    static = r.variant("int8-static")
    assert static.kernels == "x86 oneDNN int8 (lowered)"
    assert static.size_bytes < fp32.size_bytes / 2.5  # int8 weights, fp32 biases and scales
    assert abs(r.accuracy_drop_pp("int8-static")) <= 2.0
    assert abs(r.accuracy_drop_pp("int8-dynamic")) <= 2.0
    assert t.result is not None
    for v in r.variants:
        windows = [w for w in t.result.windows if w.name.startswith(v.variant + " ")]
        assert len(windows) == 2  # one per round
        m = v.measurement
        assert m.energy_j == pytest.approx(sum(w.energy_j for w in windows))
        assert m.energy_j == pytest.approx(POWER_W * sum(w.duration_s for w in windows))
        assert v.energy_per_item_j == pytest.approx(m.energy_j / (m.calls * 32))
        assert r.energy_ratio(v.variant) == pytest.approx(
            fp32.energy_per_item_j / v.energy_per_item_j
        )
    ok = [v for v in r.variants if r.accuracy_drop_pp(v.variant) <= 1.0 + 1e-9]
    assert r.best == min(ok, key=lambda v: v.energy_per_item_j).variant
    d = r.to_dict()
    assert {"variant", "energy_per_item_j", "latency_ms", "size_bytes", "accuracy"} <= set(
        d["variants"][1]
    )


def test_int8_logits_follow_fp32(digits: DataSplit, trained: dict[str, nn.Module]) -> None:
    xs, _, cal = _tensors(digits)
    x = xs[:64]
    fp32 = trained["cnn"](x).argmax(1)
    for variant in ("int8-static", "int8-dynamic"):
        p = prepare_variant(trained["cnn"], variant, example=x, calibration=[cal[:64], cal[64:128]])
        agree = (p.forward(x).argmax(1) == fp32).float().mean().item()
        assert agree >= 0.95, variant


def test_without_lowering_the_reference_model_says_it_is_not_int8_speed(
    digits: DataSplit, trained: dict[str, nn.Module]
) -> None:
    xs, _, cal = _tensors(digits)
    p = prepare_variant(trained["mlp"], "int8-static", example=xs[:16], calibration=[cal[:16]],
                        lower=False)  # fmt: skip
    assert p.kernels.startswith("reference") and "not int8 speed" in p.kernels
    assert "3 weight layer(s) int8" in p.method
    assert p.forward(xs[:16]).shape == (16, 10)


def test_bad_requests_are_refused(trained: dict[str, nn.Module]) -> None:
    x = torch.zeros(4, 1, 8, 8)
    with pytest.raises(ConfigError, match="unknown variant"):
        prepare_variant(trained["mlp"], "int4", example=x)
    with pytest.raises(ConfigError, match="calibration"):
        prepare_variant(trained["mlp"], "int8-static", example=x)
    with pytest.raises(ConfigError, match="unknown variant"):
        measure_quantization(
            trained["mlp"], val=(x, torch.zeros(4, dtype=torch.long)), calibration=x,
            variants=["int8-dynamic", "fp16"], context=LeverContext(store=False),
        )  # fmt: skip
