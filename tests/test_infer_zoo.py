"""The model-zoo trend: torchvision metadata without downloads, the Pareto front, a small
measured zoo with plots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
torch.set_num_threads(1)

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.infer import (  # noqa: E402
    DEFAULT_ZOO,
    FAMILY_YEARS,
    ZOO_PROTOCOL,
    measure_zoo,
    model_info,
    pareto_front,
    zoo_models,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext, Protocol  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402

CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)
POWER_W = 10.0


def test_metadata_comes_from_torchvision_without_a_download() -> None:
    info = model_info("shufflenet_v2_x1_0")
    assert (info.family, info.year) == ("shufflenet_v2", 2018)
    assert info.top1 == pytest.approx(69.362)
    assert info.gflops == pytest.approx(0.145)
    assert info.params == 2278604
    assert info.input_size == 224
    assert model_info("inception_v3").input_size == 299  # its own evaluation crop
    assert model_info("swin_v2_t").family == "swin_v2"  # the longest prefix wins
    assert model_info("alexnet").year == 2012 and model_info("convnext_tiny").year == 2022


def test_the_default_set_spans_the_decade_and_every_model_has_a_year() -> None:
    known = set(zoo_models())
    assert set(DEFAULT_ZOO) <= known
    years = {model_info(m).year for m in DEFAULT_ZOO}
    assert min(years) == 2012 and max(years) == 2022
    assert "shufflenet_v2_x1_0" in DEFAULT_ZOO
    assert all(y for y, _ in FAMILY_YEARS.values())


def test_unknown_models_are_refused() -> None:
    with pytest.raises(ConfigError, match="not a torchvision classification model"):
        model_info("resnet9000")
    with pytest.raises(ConfigError, match="no model"):
        measure_zoo([], context=LeverContext(store=False))


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = [(1.0, 60.0), (2.0, 70.0), (3.0, 65.0), (2.0, 70.0), (0.5, 50.0)]
    assert pareto_front(points) == [True, True, False, True, True]


def test_pareto_front_flags_by_hand_with_ties_and_dominated_points() -> None:
    points = [
        (1.0, 60.0),  # on: the cheapest model at 60 %
        (1.0, 55.0),  # off: as cheap as the first, less accurate
        (2.0, 60.0),  # off: as accurate as the first, dearer
        (2.0, 70.0),  # on
        (2.0, 70.0),  # on: an exact tie with the one above; neither beats the other
        (3.0, 69.0),  # off: dearer and less accurate than (2, 70)
        (4.0, 80.0),  # on: the most accurate
        (0.5, 40.0),  # on: the cheapest
        (5.0, 80.0),  # off: as accurate as (4, 80), dearer
    ]
    assert pareto_front(points) == [True, False, False, True, True, False, True, True, False]
    assert pareto_front([(1.0, 50.0)]) == [True]
    assert pareto_front([]) == []


def test_the_protocol_gives_each_model_a_window_per_repeat() -> None:
    meter = ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])
    t = Tracker("zoo", meters=[meter], store=False)
    once = Protocol(repeats=2, warmup=1, min_time_s=0.0, min_calls=1, max_calls=1)
    result = measure_zoo(["mobilenet_v3_small"], protocol=once, tracker=t)
    assert t.result is not None
    assert [w.name for w in t.result.windows] == [
        "mobilenet_v3_small #1", "mobilenet_v3_small #2",
    ]  # fmt: skip
    m = result.entries[0].measurement
    assert m.calls == 2 and m.energy_j == pytest.approx(sum(w.energy_j for w in t.result.windows))


@pytest.mark.slow
def test_a_small_zoo_is_measured_plotted_and_compared_with_the_trend(tmp_path: Path) -> None:
    meter = ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])
    t = Tracker("zoo", meters=[meter], store=False)
    names = ["shufflenet_v2_x0_5", "mobilenet_v3_small", "squeezenet1_1"]
    seen: list[str] = []
    result = measure_zoo(
        names, batch_size=2, protocol=replace(ZOO_PROTOCOL, min_time_s=0.05, min_calls=2),
        out_dir=str(tmp_path / "plots"), tracker=t,
        context=LeverContext(progress=lambda i, n, m: seen.append(f"{i + 1}/{n} {m}")),
    )  # fmt: skip
    assert seen == ["1/3 shufflenet_v2_x0_5", "2/3 mobilenet_v3_small", "3/3 squeezenet1_1"]
    assert [e.model for e in result.entries] == [
        "squeezenet1_1", "shufflenet_v2_x0_5", "mobilenet_v3_small",
    ]  # fmt: skip
    assert t.result is not None
    windows = {w.name: w for w in t.result.windows}
    for e in result.entries:
        m = e.measurement
        assert m.calls >= 2 and m.items_per_call == 2
        assert m.energy_j == pytest.approx(POWER_W * windows[e.model].duration_s, rel=1e-6)
        assert e.energy_per_item_j == pytest.approx(m.energy_j / (2 * m.calls))
    # The three top-1 accuracies differ, so a model is on the front exactly when it uses less
    # energy per image than every more accurate one: a sweep, not the code's pairwise rule.
    assert len({e.top1 for e in result.entries}) == 3
    least_j = float("inf")
    for e in sorted(result.entries, key=lambda e: -e.top1):
        assert e.on_pareto_front == (e.energy_per_item_j < least_j), e.model
        least_j = min(least_j, e.energy_per_item_j)
    s = result.shufflenet["shufflenet_v2_x0_5"]
    assert s["ratio_to_trend"] == pytest.approx(
        s["energy_per_item_j"] / s["trend_energy_per_item_j"]
    )
    assert s["models_since"] == 1  # mobilenet_v3_small (2019)
    assert "shufflenet_v2_x0_5" in s["summary"]
    assert result.trend_per_year is not None
    for p in result.plots:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(Path(p).name for p in result.plots) == [
        "energy_vs_accuracy.png", "energy_vs_year.png",
    ]  # fmt: skip
    d = result.to_dict()
    keys = {"model", "year", "top1", "gflops", "params", "energy_per_item_j", "latency_ms"}
    assert keys <= set(d["entries"][0])
    assert any("random weights" in n for n in d["notes"])
