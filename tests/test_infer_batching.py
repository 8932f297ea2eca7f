"""Batching under a simulated request queue with real inference, and the tuner.

Energies come from a replayed constant-power trace, so each window's energy is exactly
power x its wall time and every J/request can be checked by arithmetic.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models; see tests/test_train.py

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.infer import (  # noqa: E402
    BatchPolicy,
    PolicyResult,
    RequestStream,
    measure_batching,
    parse_policies,
    pick_policy,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source  # noqa: E402
from wattwise.meters._replay import ReplayMeter, TraceInterval  # noqa: E402
from wattwise.protocol import LeverContext, Protocol  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.workloads import build_model  # noqa: E402

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
        tracker=t, model_name="mlp",
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
        tracker=t, slo_s=1.0,
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
        clock="virtual", service_s=lambda n: 0.001, protocol=Protocol(repeats=1, warmup=3),
        tracker=t,
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
