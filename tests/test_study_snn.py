"""Spiking networks: operation counts and their prices, firing rates, the SNN models, the
study and its record, and ``wattwise study snn``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests._cli import one_error_line, wattwise
from torch import nn

from wattwise._errors import ConfigError
from wattwise._extras import MissingExtra
from wattwise._records.charts import BarData, FrontData
from wattwise.protocol import LeverContext
from wattwise.store import RunStore
from wattwise.studies import (
    OPCOUNT_SOURCE,
    SnnStudy,
    StudyMethod,
    build_snn,
    count_ops,
    crossover_rate,
    parse_snn_spec,
    price_ops,
    study_snn,
)
from wattwise.studies._snn_net import is_neuron
from wattwise.workloads import build_model, load_dataset


class _Fire(nn.Module):
    """A stand-in neuron layer: spikes where the input exceeds 0.5, with its 'membrane'."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x > 0.5).float(), x


def _linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.constant_(layer.weight, 1.0)
    return layer


# -- counts -------------------------------------------------------------------------------


def test_linear_fed_spikes_counts_spikes_times_fan_out() -> None:
    count = count_ops(_linear(3, 2), torch.tensor([[1.0, 0.0, 1.0]]), spiking=True)
    (layer,) = count.layers
    assert layer.spiking_input
    assert (layer.synops, layer.max_synops, layer.macs) == (4, 6, 0)
    assert layer.input_rate == pytest.approx(2 / 3)
    assert count.input_rate == pytest.approx(4 / 6)


def test_an_ann_layer_counts_dense_macs_whatever_its_inputs() -> None:
    count = count_ops(_linear(3, 2), torch.tensor([[0.5, 0.0, 2.0], [1.0, 0.0, 1.0]]))
    (layer,) = count.layers
    assert not layer.spiking_input
    assert (layer.macs, layer.synops) == (6, 0)  # per inference: 2 x 3, zeros included
    assert count.samples == 2


def test_analog_input_to_a_spiking_network_counts_macs() -> None:
    count = count_ops(_linear(3, 2), torch.tensor([[0.5, 0.0, 2.0]]), spiking=True)
    assert (count.macs, count.synops) == (6, 0)
    assert not count.layers[0].spiking_input


def test_conv1d_spikes_reach_only_the_outputs_they_touch_borders_included() -> None:
    conv = nn.Conv1d(1, 2, 3, padding=1)
    count = count_ops(conv, torch.tensor([[[1.0, 0.0, 0.0, 1.0]]]), spiking=True)
    (layer,) = count.layers
    # the spikes at 0 and 3 reach 2 outputs each, in each of 2 channels
    assert layer.synops == 8
    assert layer.max_synops == (2 + 3 + 3 + 2) * 2
    dense = count_ops(conv, torch.tensor([[[1.0, 0.5, 0.0, 1.0]]]))
    assert dense.macs == 2 * 4 * 3  # outputs x (in channels x kernel)


def test_conv2d_counts_a_centre_spike_once_without_padding() -> None:
    conv = nn.Conv2d(1, 1, 3)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    count = count_ops(conv, x, spiking=True)
    assert (count.synops, count.layers[0].max_synops) == (1, 9)
    assert count_ops(conv, x + 0.5).macs == 9


def test_firing_rates_are_exact_on_fixed_spikes() -> None:
    model = nn.Sequential(_linear(4, 4), _Fire())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
    x = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    count = count_ops(model, x, spiking=True, is_neuron=lambda m: isinstance(m, _Fire))
    (neurons,) = count.neurons
    assert (neurons.neurons, neurons.updates, neurons.spikes) == (4, 4, 2.5)
    assert neurons.firing_rate == pytest.approx(5 / 8)


def test_snntorch_firing_rate_matches_the_spikes_it_returns() -> None:
    torch.manual_seed(0)
    model = build_snn("snn-mlp:steps=3,width=16", input_shape=(1, 8, 8), num_classes=10)
    seen: list[torch.Tensor] = []
    model.lifs[0].register_forward_hook(lambda m, a, out: seen.append(out[0].detach()))
    x = torch.rand(5, 1, 8, 8)
    count = count_ops(model, x, spiking=True, is_neuron=is_neuron)
    spikes = torch.cat(seen)
    hidden = count.neurons[0]
    assert hidden.name == "lifs.0"
    assert hidden.steps == 3 and hidden.neurons == 16
    assert hidden.firing_rate == pytest.approx(float(spikes.mean()))
    # the head is fed the hidden spikes: its accumulates are those spikes x 10 outputs
    head = next(layer for layer in count.layers if layer.name == "head")
    assert head.spiking_input
    assert head.synops == pytest.approx(float(spikes.sum()) * 10 / 5)


# -- prices -------------------------------------------------------------------------------


def test_prices_are_horowitz_45nm_figures() -> None:
    snn = count_ops(_linear(3, 2), torch.tensor([[1.0, 0.0, 1.0]]), spiking=True)
    ann = count_ops(_linear(3, 2), torch.tensor([[0.5, 0.0, 2.0]]))
    assert price_ops(snn, memory=False).total_pj == pytest.approx(4 * 0.9)
    assert price_ops(snn).total_pj == pytest.approx(4 * (0.9 + 5.0))
    assert price_ops(ann, memory=False).total_pj == pytest.approx(6 * 4.6)
    assert price_ops(ann).total_pj == pytest.approx(6 * (4.6 + 5.0))
    assert price_ops(ann, "int8").total_pj == pytest.approx(6 * (0.23 + 1.25))
    assert price_ops(ann, "fp16", memory=False).total_pj == pytest.approx(6 * 1.5)
    assert price_ops(ann).source == OPCOUNT_SOURCE
    with pytest.raises(ConfigError, match="unknown precision"):
        price_ops(ann, "fp8")


def test_neuron_updates_are_priced_as_macs_with_membrane_traffic() -> None:
    model = nn.Sequential(_linear(4, 4), _Fire())
    count = count_ops(
        model, torch.ones(1, 4), spiking=True, is_neuron=lambda m: isinstance(m, _Fire)
    )
    energy = price_ops(count)
    assert energy.neuron_pj == pytest.approx(4 * 4.6)
    assert energy.memory_pj == pytest.approx(16 * 5.0 + 4 * 2 * 5.0)


def test_crossover_rate_is_where_the_energies_meet() -> None:
    snn = count_ops(_linear(3, 2), torch.tensor([[1.0, 0.0, 1.0]]), spiking=True)
    ann_fp32 = 6 * (4.6 + 5.0)
    rate = crossover_rate(snn, ann_fp32)
    assert rate == pytest.approx(ann_fp32 / (6 * 5.9))
    assert crossover_rate(snn, 6 * 1.48) == pytest.approx(6 * 1.48 / (6 * 5.9))
    ann = count_ops(_linear(3, 2), torch.tensor([[0.5, 0.0, 2.0]]))
    assert crossover_rate(ann, 1.0) is None  # nothing spike-fed


# -- models -------------------------------------------------------------------------------


def test_snn_specs_parse_and_refuse_bad_options() -> None:
    spec = parse_snn_spec("snn-mlp:steps=4,width=32,coding=direct")
    assert (spec.steps, spec.width, spec.coding) == (4, 32, "direct")
    assert spec.ann_spec == "mlp:depth=1,width=32"
    assert parse_snn_spec(spec.spec) == spec
    for bad in ("snn-mlp:steps=0", "snn-mlp:coding=phase", "snn-mlp:size=3", "snn-rnn"):
        with pytest.raises(ConfigError):
            parse_snn_spec(bad)
    with pytest.raises(ConfigError, match="sequences"):
        build_snn("snn-cnn1d", input_shape=(1, 8, 8), num_classes=10)


@pytest.mark.parametrize(
    ("spec", "shape"), [("snn-mlp:width=16,depth=2", (1, 8, 8)), ("snn-cnn1d:width=8", (1, 40))]
)
def test_an_snn_has_the_layers_of_its_ann(spec: str, shape: tuple[int, ...]) -> None:
    snn = build_snn(spec, input_shape=shape, num_classes=10)
    ann = build_model(parse_snn_spec(spec).ann_spec, input_shape=shape, num_classes=10)
    assert [p.shape for p in snn.parameters()] == [p.shape for p in ann.parameters()]


def test_direct_coding_feeds_the_first_layer_analog_values() -> None:
    model = build_snn("snn-mlp:steps=2,width=8,coding=direct", input_shape=(4,), num_classes=3)
    count = count_ops(model, torch.rand(3, 4), spiking=True, is_neuron=is_neuron)
    first = count.layers[0]
    assert not first.spiking_input
    assert first.macs == 2 * 4 * 8  # two steps of a dense 4 -> 8 layer


# -- the study ----------------------------------------------------------------------------


@pytest.mark.slow
def test_study_trains_above_chance_and_round_trips(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.sqlite")
    study = study_snn(
        load_dataset("digits"),
        steps=(2,),
        width=64,
        epochs=3,
        infer_window_s=0.05,
        method=StudyMethod.of(repeats=1, warmup_batches=1),
        context=LeverContext(store=url, scope="process"),
    )
    ann, snn = study.variants
    assert (ann.label, snn.label, snn.steps) == ("ann", "snn T=2", 2)
    assert snn.runs.val_accuracy.median > 0.5  # chance is 0.1
    assert ann.ops.synops == 0 and ann.ops.macs == 64 * 64 + 64 * 10
    assert 0 < snn.ops.input_rate < 1 and snn.ops.neurons[0].firing_rate > 0
    assert all(e.source == OPCOUNT_SOURCE for v in study.variants for e in v.op_energy)
    assert snn.inference.energy_per_item_j.median > 0
    assert "estimated" in snn.inference.total.source  # no RAPL here: says so
    assert {c.against for c in study.crossovers} == {"ann fp32", "ann int8"}
    assert "2409.08290" in study.caution
    with RunStore.open(url) as store:
        stored = store.get_study(study.study_id)
    again = SnnStudy.from_dict(stored.results)
    assert again == study
    bars, front = again.charts()
    assert isinstance(bars, BarData) and len(bars.labels) == 2 * 3
    assert "estimate" in bars.caption
    assert isinstance(front, FrontData) and front.labels == ("ann", "snn T=2")


@pytest.mark.slow
def test_cli_study_snn_end_to_end(child_env: dict[str, str], tmp_path: Path) -> None:
    store = str(tmp_path / "runs.sqlite")
    args = ["study", "snn", "--dataset", "digits", "--steps", "2", "--width", "32"]
    args += ["--epochs", "1", "--repeats", "1", "--warmup-batches", "1", "--scope", "process"]
    proc = wattwise(child_env, *args, "--store", store, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "snn"
    assert [v["label"] for v in data["variants"]] == ["ann", "snn T=2"]
    assert data["op_source"] == OPCOUNT_SOURCE
    report = tmp_path / "report.html"
    proc = wattwise(
        child_env, "report", "--study", data["study_id"], "--store", store, "--out", str(report)
    )
    assert proc.returncode == 0, proc.stderr
    assert "snn T=2" in report.read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--steps", "0"], "time steps"),
        (["--steps", "two"], "integers"),
        (["--steps", "2,2"], "distinct"),
        (["--coding", "phase"], "coding"),
        (["--family", "cnn1d", "--dataset", "digits"], "sequences"),
        (["--dataset", "nosuch"], "nosuch"),
    ],
)
def test_cli_bad_input_is_one_line(
    child_env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    store = str(tmp_path / "runs.sqlite")
    proc = wattwise(child_env, "study", "snn", "--epochs", "1", *args, "--store", store)
    assert proc.returncode == 2
    assert says in one_error_line(proc)
    assert not Path(store).exists() or "snn" not in Path(store).read_bytes().decode("latin-1")


def test_without_snntorch_building_an_snn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snntorch", None)  # type: ignore[arg-type]
    with pytest.raises(MissingExtra, match=r"pip install 'wattwise\[snn\]'"):
        build_snn("snn-mlp", input_shape=(4,), num_classes=2)


def test_cli_without_snntorch_is_one_line_naming_the_extra(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys\nsys.modules['snntorch'] = None\n"
        "sys.argv = ['wattwise', 'study', 'snn', '--epochs', '1', '--store', sys.argv[1]]\n"
        "from wattwise.cli import main\nmain()\n"
    )
    store = tmp_path / "runs.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(store)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert line == "error: wattwise study snn needs snntorch: pip install 'wattwise[snn]'"
    assert not store.exists()
