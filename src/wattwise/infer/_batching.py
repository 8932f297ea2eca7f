"""Inference energy per request under a simulated request queue, and the batching tuner.

Every policy serves the *same* arrivals with real inference, each inside its own tracker
window, one after the other in one run. Two clocks:

* ``real``: wall-clock time. Requests arrive on schedule, the server sleeps while it
  waits, and the window's energy covers the whole run: idle power is paid for every second
  the run lasts, as on a real server. This is what a dedicated server pays per request.
* ``virtual``: simulated time. Service times are measured (real inference), waiting is
  free and instant; the window then holds only the energy spent serving. An idle power
  given by the user (``idle_power_w``) is added for the simulated idle time, and reported
  apart as not measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.infer._measure import tracking, window_source
from wattwise.infer._queue import (
    BatchPolicy,
    Clock,
    RealClock,
    VirtualClock,
    make_arrivals,
    serve_queue,
)
from wattwise.infer._records import BatchingResult, PolicyResult
from wattwise.meters._base import Meter
from wattwise.tracking._records import Scope
from wattwise.tracking._tracker import RunSink, Tracker

__all__ = ["CLOCKS", "measure_batching", "pick_policy"]

#: Clocks :func:`measure_batching` can run the queue on.
CLOCKS = ("real", "virtual")


def pick_policy(policies: Sequence[PolicyResult], slo_s: float | None) -> tuple[str | None, str]:
    """The tuner: the policy with the lowest J/request whose p95 latency meets the SLO.

    Args:
        policies: measured policies.
        slo_s: p95 latency SLO in s, or None (any latency).

    Returns:
        ``(label or None, reason)``.
    """
    if not policies:
        return None, "no policy was measured"
    ok = [p for p in policies if slo_s is None or p.p95_latency_s <= slo_s]
    if not ok:
        fastest = min(policies, key=lambda p: p.p95_latency_s)
        return None, (
            f"no policy met the p95 SLO of {slo_s * 1e3:g} ms "  # type: ignore[operator]
            f"(lowest p95: {fastest.policy}, {fastest.p95_latency_s * 1e3:.1f} ms)"
        )
    best = min(ok, key=lambda p: p.energy_per_item_j)
    slo = "no SLO" if slo_s is None else f"p95 <= {slo_s * 1e3:g} ms"
    return best.policy, (
        f"lowest J/request of the {len(ok)} of {len(policies)} policies meeting {slo}"
    )


def _warm_sizes(policies: Sequence[BatchPolicy]) -> list[int]:
    top = max(p.max_batch_size for p in policies)
    sizes = {1, top, *(p.max_batch_size for p in policies)}
    k = 2
    while k < top:
        sizes.add(k)
        k *= 2
    return sorted(sizes)


def measure_batching(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    policies: Sequence[BatchPolicy],
    rate_rps: float,
    requests: int,
    arrival: str = "jitter",
    jitter: float = 0.2,
    seed: int = 0,
    slo_s: float | None = None,
    clock: str = "real",
    idle_power_w: float | None = None,
    service_s: Callable[[int], float] | None = None,
    device: str | torch.device = "cpu",
    model_name: str = "model",
    tracker: Tracker | None = None,
    meters: Sequence[Meter] | None = None,
    store: RunSink | str | bool | None = None,
    scope: Scope | str = Scope.MACHINE,
) -> BatchingResult:
    """Serve the same simulated request stream with every policy and measure each.

    Args:
        model: the model to serve (put in eval mode here, gradients off).
        input_shape: shape of one request's input, e.g. ``(3, 224, 224)``.
        policies: the batching policies to compare.
        rate_rps: mean arrival rate, in requests/s.
        requests: requests per policy.
        arrival: ``jitter`` (gaps ``1/rate * U(1 - jitter, 1 + jitter)``) or ``poisson``.
        jitter: relative jitter of the gaps, in [0, 1).
        seed: seed of the arrivals and of the random inputs.
        slo_s: p95 latency SLO for the tuner, in s, or None.
        clock: ``real`` or ``virtual`` (see the module docstring).
        idle_power_w: with the virtual clock, an idle power to charge for simulated idle
            time, in W (not measured: reported as ``idle_energy_j``).
        service_s: with the virtual clock, service time of a batch of n requests in s,
            instead of the measured one (tests).
        device: where inference runs.
        model_name: the model's name for the result.
        tracker: a tracker to measure with (one window per policy); default: a new one.
        meters: meters for a new tracker.
        store: store for a new tracker (None: default store; False: none).
        scope: scope of a new tracker.

    Raises:
        ConfigError: bad arguments (clock, rate, counts, idle power).
    """
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r} (known: {', '.join(CLOCKS)})")
    if not policies:
        raise ConfigError("no batching policy to measure")
    if idle_power_w is not None and (clock != "virtual" or idle_power_w < 0):
        raise ConfigError("an idle power (>= 0 W) applies to the virtual clock only")
    if service_s is not None and clock != "virtual":
        raise ConfigError("a service-time function applies to the virtual clock only")
    if slo_s is not None and not slo_s > 0:
        raise ConfigError(f"the latency SLO must be > 0, got {slo_s}")
    arrivals = make_arrivals(rate_rps, requests, process=arrival, jitter=jitter, seed=seed)
    dev = torch.device(device)
    model = model.to(dev).eval()
    top = max(p.max_batch_size for p in policies)
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(top, *input_shape, generator=gen).to(dev)
    sync = dev.type == "cuda"

    def run_batch(n: int) -> None:
        with torch.inference_mode():
            model(pool[:n])
        if sync:
            torch.cuda.synchronize(dev)

    for n in _warm_sizes(policies):  # first calls of a shape build kernels: not measured
        run_batch(n)
        run_batch(n)

    results: list[PolicyResult] = []
    with tracking(tracker, f"batching {model_name}", meters=meters, store=store, scope=scope) as t:
        for policy in policies:
            clk: Clock = RealClock() if clock == "real" else VirtualClock(service_s)
            with t.window(f"policy {policy.label}") as w:
                trace = serve_queue(arrivals, policy, clk, run_batch)
            win = w.result
            assert win is not None
            idle_j = None
            energy = win.energy_j
            if clock == "virtual" and idle_power_w is not None:
                idle_j = idle_power_w * trace.idle_s
                energy += idle_j
            lat = trace.latencies_s
            p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
            results.append(
                PolicyResult(
                    policy=policy.label,
                    max_batch_size=policy.max_batch_size,
                    max_wait_s=policy.max_wait_s if policy.waits else None,
                    greedy=policy.greedy,
                    requests=requests,
                    batches=len(trace.batches),
                    energy_j=energy,
                    uncertainty_j=win.uncertainty_j,
                    idle_energy_j=idle_j,
                    duration_s=trace.end_s,
                    busy_s=trace.busy_s,
                    latencies_s=(p50, p95, p99),
                    mean_latency_s=float(np.mean(lat)),
                    source=window_source(win.components),
                    meets_slo=None if slo_s is None else p95 <= slo_s,
                )
            )
        run_id = t.run_id
        scope_used = str(Scope(t.scope).value)
    best, reason = pick_policy(results, slo_s)
    return BatchingResult(
        model=model_name,
        device=str(dev),
        clock=clock,
        arrival=arrival,
        rate_rps=rate_rps,
        jitter=jitter if arrival == "jitter" else 0.0,
        requests=requests,
        seed=seed,
        slo_s=slo_s,
        idle_power_w=idle_power_w,
        policies=tuple(results),
        best=best,
        best_reason=reason,
        scope=scope_used,
        source=results[0].source,
        run_id=run_id,
        notes=_notes(clock, idle_power_w, scope_used, results),
    )


def _notes(
    clock: str, idle_power_w: float | None, scope: str, results: Sequence[PolicyResult]
) -> tuple[str, ...]:
    notes = [
        "requests are random tensors of the model's input shape; a batch is a slice of a "
        "pre-made pool: no decoding, preprocessing or network time is in the latencies",
        "latency = queueing + service, from arrival to the end of the request's batch",
    ]
    if clock == "real":
        notes.append(
            "real time: the server sleeps between arrivals and each policy's window covers "
            f"its whole run, so idle power is in every J/request ({scope} scope)"
        )
    else:
        idle = (
            f"plus {idle_power_w:g} W (given, not measured) times the simulated idle time"
            if idle_power_w is not None
            else "idle time is not charged (give an idle power to charge it)"
        )
        notes.append(
            "virtual time: service times measured by running the model, waiting simulated "
            f"as free; J/request is the energy measured while serving, {idle}"
        )
    overloaded = [p.policy for p in results if p.batches and p.busy_s > 0.95 * p.duration_s > 0]
    if overloaded:
        notes.append(
            "server saturated (busy > 95 % of the run) under: "
            + ", ".join(overloaded)
            + "; the queue grew and latencies reflect the backlog"
        )
    if any(not math.isfinite(p.energy_per_item_j) for p in results):
        notes.append("some policies have no finite energy figure")
    return tuple(notes)
