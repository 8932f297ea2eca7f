"""Batching under a simulated request queue with real inference, and the tuner.

Energies come from a replayed constant-power trace, so each window's energy is exactly
power x its wall time and every J/request can be checked by arithmetic.
"""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models; see tests/test_train.py

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.infer import (  # noqa: E402
    BatchingSweep,
    BatchPolicy,
    PolicyResult,
    RequestStream,
    measure_batching,
    parse_policies,
    parse_rates,
    pick_policy,
    sweep_batching,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext, Protocol  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.workloads import build_model  # noqa: E402

#: One serve per policy window (the default protocol serves a short stream again until the
#: window has lasted 1 s), so counts per stream can be checked.
ONCE = Protocol(repeats=1, warmup=2, min_time_s=0.0, min_calls=1)

CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "test-model"), relative_uncertainty=0.1
)
POWER_W = 10.0


def tracker() -> Tracker:
    meter = ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, POWER_W * 36000.0)])
    return Tracker("batching", meters=[meter], store=False)


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("mlp", input_shape=(1, 8, 8), num_classes=10)


def _policy(label: str, j: float, p95_s: float) -> PolicyResult:
    return PolicyResult(
        policy=label, max_batch_size=1, max_wait_s=None, greedy=False, requests=10,
        batches=10, energy_j=10 * j, uncertainty_j=0.0, idle_energy_j=None, duration_s=1.0,
        busy_s=0.5, latencies_s=(p95_s / 2, p95_s, p95_s), mean_latency_s=p95_s / 2,
        source="estimated (test-model)",
    )  # fmt: skip


def test_the_tuner_picks_the_lowest_energy_within_the_slo() -> None:
    ps = [_policy("a", 1.0, 0.010), _policy("b", 0.5, 0.050), _policy("c", 0.2, 0.500)]
    assert pick_policy(ps, None)[0] == "c"
    best, reason = pick_policy(ps, 0.100)
    assert best == "b" and "2 of 3" in reason
    best, reason = pick_policy(ps, 0.001)
    assert best is None and "lowest p95: a, 10.0 ms" in reason


def test_virtual_clock_energy_is_the_serving_window_plus_the_given_idle_power() -> None:
    t = tracker()
    policies = parse_policies("1,8", max_wait_s=(0.05,))
    result = measure_batching(
        mlp(), input_shape=(1, 8, 8), policies=policies, stream=RequestStream(20.0, 40),
        clock="virtual", idle_power_w=2.0, service_s=lambda n: 0.004 + 0.0005 * n,
        tracker=t, model_name="mlp", protocol=ONCE,
    )  # fmt: skip
    assert t.result is not None
    windows = {w.name: w for w in t.result.windows}
    for p in result.policies:
        w = windows[f"policy {p.policy}"]
        assert w.energy_j == pytest.approx(POWER_W * w.duration_s, rel=1e-6)
        idle_s = p.duration_s - p.busy_s
        assert p.idle_energy_j == pytest.approx(2.0 * idle_s)
        assert p.energy_j == pytest.approx(w.energy_j + 2.0 * idle_s)
        assert p.energy_per_item_j == pytest.approx(p.energy_j / 40)
        assert p.source == "estimated (test-model)"
    one, eight = result.policy("batch=1"), result.policy("batch=8 wait=50ms")
    # 20 req/s, 50 ms max wait: one arrival per 50 ms means batches of about one or two
    assert one.batches == 40 and one.busy_s == pytest.approx(40 * 0.0045)
    assert 1.0 < eight.mean_batch_size < 3.0
    assert eight.p95_latency_s > one.p95_latency_s  # waiting for a batch costs latency
    assert result.best == min(result.policies, key=lambda p: p.energy_per_item_j).policy
    assert result.ratio_to_batch1 == pytest.approx(
        result.policy(result.best).energy_per_item_j / one.energy_per_item_j
    )
    d = result.to_dict()
    assert d["clock"] == "virtual" and d["idle_power_w"] == 2.0
    assert {"policy", "max_batch_size", "energy_per_item_j", "p95_ms", "throughput_rps"} <= set(
        d["policies"][0]
    )
    assert any("virtual time" in n for n in d["notes"])


def test_real_clock_energy_covers_the_whole_run_idle_included() -> None:
    t = tracker()
    policies = [BatchPolicy(1), BatchPolicy(8, 0.02), BatchPolicy(64, greedy=True)]
    result = measure_batching(
        mlp(), input_shape=(1, 8, 8), policies=policies, stream=RequestStream(400.0, 40),
        tracker=t, slo_s=1.0, protocol=ONCE,
    )  # fmt: skip
    assert t.result is not None
    windows = {w.name: w for w in t.result.windows}
    for p in result.policies:
        w = windows[f"policy {p.policy}"]
        assert p.idle_energy_j is None
        assert p.energy_j == pytest.approx(POWER_W * w.duration_s, rel=1e-6)
        # the run lasts at least until the last arrival (about 40 / 400 = 0.1 s)
        assert p.duration_s >= 0.08 and w.duration_s >= p.duration_s
        assert p.meets_slo is True
        assert p.requests == 40 and sum([p.batches]) >= 1
        assert p.throughput_rps == pytest.approx(40 / p.duration_s)
    assert result.policy("batch=1").batches == 40
    assert result.policy("batch=8 wait=20ms").mean_batch_size > 2.0
    assert result.scope == "machine" and result.clock == "real"


def test_bad_settings_are_refused_before_serving() -> None:
    kw = {"input_shape": (1, 8, 8), "policies": [BatchPolicy(1)],
          "stream": RequestStream(10.0, 5), "context": LeverContext(store=False)}  # fmt: skip
    with pytest.raises(ConfigError, match="unknown clock"):
        measure_batching(mlp(), clock="sundial", **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="virtual clock only"):
        measure_batching(mlp(), idle_power_w=3.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="SLO"):
        measure_batching(mlp(), slo_s=0.0, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no batching policy"):
        measure_batching(mlp(), **{**kw, "policies": []})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown arrival process 'burst'"):
        RequestStream(10.0, 5, arrival="burst")  # refused when the stream is made
    with pytest.raises(ConfigError, match="jitter must be in"):
        RequestStream(10.0, 5, jitter=1.5)


def test_the_protocol_warms_every_batch_size_and_orders_the_policies() -> None:
    """Warm-up calls (not measured) come from the protocol: ``warmup`` per batch size, all
    before the first window; the policies are served in the protocol's order, each once."""
    seen: list[int] = []

    class Counting(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(len(x))
            return x

    t = tracker()
    policies = [BatchPolicy(1), BatchPolicy(4, 0.01)]
    result = measure_batching(
        Counting(), input_shape=(2,), policies=policies, stream=RequestStream(1000.0, 8),
        clock="virtual", service_s=lambda n: 0.001,
        protocol=Protocol(repeats=1, warmup=3, min_time_s=0.0, min_calls=1), tracker=t,
    )  # fmt: skip
    # warm sizes 1, 2 and 4, three calls each, before any request is served
    assert seen[:9] == [1, 1, 1, 2, 2, 2, 4, 4, 4]
    assert sum(seen[9:]) == 2 * 8  # then every request, once per policy
    assert t.result is not None
    assert [w.name for w in t.result.windows] == ["policy batch=1", "policy batch=4 wait=10ms"]
    assert [p.policy for p in result.policies] == ["batch=1", "batch=4 wait=10ms"]
    with pytest.raises(ConfigError, match="repeats must be 1"):
        measure_batching(
            Counting(), input_shape=(2,), policies=policies, stream=RequestStream(10.0, 2),
            protocol=Protocol(repeats=2), context=LeverContext(store=False),
        )  # fmt: skip


def test_a_short_stream_is_served_again_until_the_window_is_long_enough() -> None:
    """The protocol's window rule: a virtual-clock stream served in milliseconds is served
    again until the window has lasted ``min_time_s``; figures are summed over the serves."""
    t = tracker()
    result = measure_batching(
        mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1), BatchPolicy(4, 0.01)],
        stream=RequestStream(1000.0, 20), clock="virtual", service_s=lambda n: 0.001,
        protocol=Protocol(repeats=1, warmup=1, min_time_s=0.2, min_calls=1), tracker=t,
    )  # fmt: skip
    assert t.result is not None
    windows = {w.name: w for w in t.result.windows}
    for p in result.policies:
        assert p.serves > 1 and p.requests == 20 * p.serves
        assert p.window_s >= 0.2
        assert p.window_s == pytest.approx(windows[f"policy {p.policy}"].duration_s)
        assert p.energy_per_item_j == pytest.approx(p.energy_j / (20 * p.serves))
    one = result.policy("batch=1")
    assert one.batches == one.requests  # one request per batch, every serve
    assert one.busy_s == pytest.approx(0.001 * one.requests)  # the given service times
    assert any("served several times" in n for n in result.notes)


def test_net_of_idle_subtracts_the_idle_power_measured_in_the_same_run() -> None:
    """Idle windows before and after the policies give the idle power; each policy's net
    energy is its measured energy less that power times its window's wall time (with the
    replayed constant 10 W, idle and serving cost the same: nothing is added net)."""
    t = tracker()
    result = measure_batching(
        mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1), BatchPolicy(8, 0.02)],
        stream=RequestStream(400.0, 40), clock="virtual", idle_power_w=1.0, protocol=ONCE,
        tracker=t, idle_s=0.2,
    )  # fmt: skip
    assert t.result is not None
    names = [w.name for w in t.result.windows]
    assert names[0] == "idle before" and names[-1] == "idle after"
    idle = result.measured_idle
    assert idle is not None and idle.power_w == pytest.approx(POWER_W, rel=1e-6)
    assert idle.duration_s >= 0.2
    for p in result.policies:
        assert p.measured_j is not None and p.net_energy_j is not None
        assert p.energy_j == pytest.approx(p.measured_j + (p.idle_energy_j or 0.0))
        assert p.net_energy_j == pytest.approx(p.measured_j - idle.power_w * p.window_s)
        assert p.net_energy_j == pytest.approx(0.0, abs=1e-6)  # constant power: no increment
        assert p.net_energy_per_item_j == pytest.approx(p.net_energy_j / p.requests)
    d = result.to_dict()
    assert d["measured_idle"]["power_w"] == pytest.approx(POWER_W)
    assert "net_energy_per_item_j" in d["policies"][0]
    assert any("net of idle" in n for n in d["notes"])
    with pytest.raises(ConfigError, match="idle measurement"):
        measure_batching(
            mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1)],
            stream=RequestStream(10.0, 2), idle_s=-1.0, context=LeverContext(store=False),
        )  # fmt: skip


@pytest.mark.slow
def test_serving_adds_energy_on_top_of_the_measured_idle_with_the_real_meters() -> None:
    """The real estimate meter in process scope: the process asleep is charged far less
    than the process serving a compute-bound model, so every net figure is positive."""
    torch.manual_seed(0)
    net = build_model("mlp:depth=3,width=512", input_shape=(1, 8, 8), num_classes=10)
    result = measure_batching(
        net, input_shape=(1, 8, 8), policies=[BatchPolicy(1), BatchPolicy(16, 0.01)],
        stream=RequestStream(20000.0, 200), clock="virtual",
        protocol=Protocol(repeats=1, warmup=2, min_time_s=0.5, min_calls=1),
        context=LeverContext(store=False, scope="process"), idle_s=0.6,
    )  # fmt: skip
    idle = result.measured_idle
    assert idle is not None and result.scope == "process"
    for p in result.policies:
        assert p.net_energy_j is not None and p.net_energy_j > 0
        assert p.measured_j is not None and p.measured_j / p.window_s > idle.power_w


def test_the_tuner_ranks_by_net_energy_when_every_policy_has_it() -> None:
    a = dataclasses.replace(_policy("a", 1.0, 0.01), net_energy_j=2.0)  # 0.2 J/request net
    b = dataclasses.replace(_policy("b", 0.9, 0.01), net_energy_j=5.0)  # cheaper gross only
    best, reason = pick_policy([a, b], None)
    assert best == "a" and "net J/request" in reason
    best, reason = pick_policy([_policy("a", 1.0, 0.01), b], None)  # not all net: gross
    assert best == "b" and "net" not in reason


def test_the_answer_names_the_load_it_was_tuned_for() -> None:
    result = measure_batching(
        mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1), BatchPolicy(4, 0.01)],
        stream=RequestStream(20.0, 40), clock="virtual", service_s=lambda n: 0.01,
        protocol=ONCE, tracker=tracker(),
    )  # fmt: skip
    # 20 req/s served in 10 ms each: batch=1 keeps the server 20 % busy
    busy = result.batch1_busy_share
    assert busy == pytest.approx(0.4 / result.policy("batch=1").duration_s)
    assert 0.15 < busy < 0.25
    assert "tuned for 20 req/s (jitter +-20 %), where batch=1 keeps the server 2" in (
        result.best_reason
    )
    d = result.to_dict()
    assert d["tuned_for"]["rate_rps"] == 20.0
    assert d["tuned_for"]["batch1_busy_share"] == pytest.approx(busy)
    assert d["tuned_for"]["text"] in d["best_reason"]


def test_rates_are_parsed_sorted_and_bad_ones_refused() -> None:
    assert parse_rates("32, 2,8,8") == [2.0, 8.0, 32.0]
    for bad, match in (("2,x", "bad rate 'x'"), ("0", "bad rate '0'"), (" , ", "no arrival")):
        with pytest.raises(ConfigError, match=match):
            parse_rates(bad)


def test_a_sweep_measures_every_policy_at_every_rate_in_one_run() -> None:
    t = tracker()
    sweep = sweep_batching(
        mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1), BatchPolicy(8, 0.005)],
        rates_rps=[20000.0, 200.0], stream=lambda r: RequestStream(r, 60), idle_s=0.0,
        protocol=ONCE, tracker=t, model_name="mlp", slo_s=1.0,
    )  # fmt: skip
    assert [r.rate_rps for r in sweep.results] == [200.0, 20000.0]  # lowest rate first
    assert t.result is not None
    paths = [w.path for w in t.result.windows]
    assert "rate 200 rps/policy batch=1" in paths and "rate 20000 rps/policy batch=1" in paths
    light, heavy = sweep.results
    assert light.batch1_busy_share is not None and heavy.batch1_busy_share is not None
    assert heavy.batch1_busy_share > light.batch1_busy_share  # more load, busier server
    assert heavy.policy("batch=8 wait=5ms").mean_batch_size > (
        light.policy("batch=8 wait=5ms").mean_batch_size
    )
    rows = sweep.rows
    assert [row["rate_rps"] for row in rows] == [200.0, 20000.0]
    assert rows[1]["tuned_for"] == heavy.tuned_for["text"]
    (chart,) = sweep.charts()
    assert chart.labels == ("200 req/s", "20000 req/s")
    d = sweep.to_dict()
    assert d["kind"] == "batching-sweep" and len(d["results"]) == 2
    assert BatchingSweep.from_dict(d) == sweep
    with pytest.raises(ConfigError, match="no arrival rates"):
        sweep_batching(
            mlp(), input_shape=(1, 8, 8), policies=[BatchPolicy(1)], rates_rps=[],
            stream=lambda r: RequestStream(r, 5), context=LeverContext(store=False),
        )  # fmt: skip
